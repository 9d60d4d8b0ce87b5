package rocksindex

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func openTemp(t *testing.T) *Index {
	t.Helper()
	ix, err := Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(ix.Close)
	return ix
}

func TestAddListPagesInDIDOrder(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	require.NoError(t, ix.Add("app.bsky.feed.post", []string{"did:plc:c", "did:plc:a", "did:plc:b"}))
	// A prefix-sharing collection must not leak into the listing.
	require.NoError(t, ix.Add("app.bsky.feed.postgate", []string{"did:plc:z"}))
	// Writing the same DID again changes nothing.
	require.NoError(t, ix.Add("app.bsky.feed.post", []string{"did:plc:a"}))

	all, err := ix.ListRepos("app.bsky.feed.post", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:a", "did:plc:b", "did:plc:c"}, all)

	page, err := ix.ListRepos("app.bsky.feed.post", "did:plc:a", 1)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:b"}, page)

	rest, err := ix.ListRepos("app.bsky.feed.post", "did:plc:c", 10)
	require.NoError(t, err)
	require.Empty(t, rest)

	colls, err := ix.CollectionsOf("did:plc:a")
	require.NoError(t, err)
	require.Equal(t, []string{"app.bsky.feed.post"}, colls)
}

func TestCollectionsSkipsBetweenPrefixes(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	want := []string{"a.b.c", "a.b.cd", "app.bsky.feed.like", "com.example.x"}
	for i, c := range want {
		dids := make([]string, 50*(i+1))
		for j := range dids {
			dids[j] = fmt.Sprintf("did:plc:%024d", j)
		}
		require.NoError(t, ix.Add(c, dids))
	}
	got, err := ix.Collections()
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestOpenFailsWhileAnotherHandleHoldsTheDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ix, err := Open(dir)
	require.NoError(t, err)
	defer ix.Close()
	_, err = Open(dir)
	require.ErrorContains(t, err, "lock")
}

func TestReopenKeepsWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ix, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, ix.Add("a.b.c", []string{"did:plc:a"}))
	require.NoError(t, ix.Ping())
	ix.Close()

	ix, err = Open(dir)
	require.NoError(t, err)
	defer ix.Close()
	got, err := ix.ListRepos("a.b.c", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:a"}, got)
}

func TestDeleteCollectionRemovesBothSides(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	many := numberedDIDs(deleteBatch+5, 0)
	require.NoError(t, ix.Add("a.b.gone", many))
	// Neighbours in key order: a longer NSID with the same start, and the next name.
	require.NoError(t, ix.Add("a.b.gone.more", many[:2]))
	require.NoError(t, ix.Add("a.b.gonf", many[:1]))
	require.NoError(t, ix.Add("a.b.kept", many[:3]))

	var reported []int
	n, err := ix.DeleteCollection(context.Background(), "a.b.gone", func(removed int) { reported = append(reported, removed) })
	require.NoError(t, err)
	require.Equal(t, len(many), n)
	require.Equal(t, []int{deleteBatch, len(many)}, reported, "progress after each batch")

	left, err := ix.ListRepos("a.b.gone", "", 10)
	require.NoError(t, err)
	require.Empty(t, left)
	colls, err := ix.CollectionsOf(many[0])
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.gone.more", "a.b.gonf", "a.b.kept"}, colls, "cbr keeps only the other collections")
	all, err := ix.Collections()
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.gone.more", "a.b.gonf", "a.b.kept"}, all)
	more, err := ix.ListRepos("a.b.gone.more", "", 10)
	require.NoError(t, err)
	require.Equal(t, many[:2], more)
}

// numberedDIDs is n did:plc DIDs in DID order, numbered from first.
func numberedDIDs(n, first int) []string {
	dids := make([]string, n)
	for i := range dids {
		dids[i] = fmt.Sprintf("did:plc:%024d", first+i)
	}
	return dids
}

func TestDeleteCollectionCutShortFinishesWhenRunAgain(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	many := numberedDIDs(2*deleteBatch+1, 0)
	require.NoError(t, ix.Add("a.b.gone", many))
	ctx, cancel := context.WithCancel(context.Background())
	n, err := ix.DeleteCollection(ctx, "a.b.gone", func(int) { cancel() })
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, deleteBatch, n)
	// Cut short: the rbc side still lists every DID, so the next run finds them all.
	listed, err := ix.ListRepos("a.b.gone", "", len(many)+1)
	require.NoError(t, err)
	require.Len(t, listed, len(many))

	n, err = ix.DeleteCollection(context.Background(), "a.b.gone", nil)
	require.NoError(t, err)
	require.Equal(t, len(many), n)
	for _, did := range []string{many[0], many[deleteBatch], many[len(many)-1]} {
		colls, err := ix.CollectionsOf(did)
		require.NoError(t, err)
		require.Empty(t, colls, did)
	}
}

// A stream add during the walk, ahead of it, finds its pair whole (and remembers so); the walk
// then deletes its cbr key and is cut short. The next add of the pair must make it whole
// again, so that the account's deletion (which finds pairs through cbr) removes it.
func TestDeleteCollectionCutShortForgetsPairsItHalfWrote(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	many := numberedDIDs(2*deleteBatch+1, 0)
	require.NoError(t, ix.Add("a.b.gone", many))
	ahead := many[deleteBatch+deleteBatch/2] // in the walk's second batch
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := ix.DeleteCollection(ctx, "a.b.gone", func(int) {
		calls++
		switch calls {
		case 1:
			_, err := ix.AddPairs([]Pair{{"a.b.gone", ahead}})
			require.NoError(t, err)
		case 2:
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)

	_, err = ix.AddPairs([]Pair{{"a.b.gone", ahead}})
	require.NoError(t, err)
	colls, err := ix.CollectionsOf(ahead)
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.gone"}, colls, "the add made the pair whole")
	removed, _, err := ix.RemoveAccount(ahead)
	require.NoError(t, err)
	require.Equal(t, 1, removed)
	require.EqualValues(t, len(many)-1, ix.Count("a.b.gone"))
}

// Pairs written while a collection is deleted (a stream add, a page in flight) behind the
// walk's position, ahead of it, and during its last batch: the delete removes each whole,
// and the index stays consistent (no DID names the collection that no listing has); a write
// after the delete is kept whole.
func TestDeleteCollectionRemovesPairsWrittenDuringItWhole(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	many := numberedDIDs(2*deleteBatch+1, 10)
	require.NoError(t, ix.Add("a.b.gone", many))
	behind, ahead, page, late := "did:plc:000000000000000000000001", "did:plc:999999999999999999999999",
		"did:plc:000000000000000000000002", "did:plc:000000000000000000000003"
	calls := 0
	n, err := ix.DeleteCollection(context.Background(), "a.b.gone", func(int) {
		calls++
		if calls == 1 {
			_, err := ix.AddPairs([]Pair{{"a.b.gone", behind}, {"a.b.gone", ahead}, {"a.b.kept", behind}})
			require.NoError(t, err)
			require.NoError(t, ix.Add("a.b.gone", []string{page}))
		}
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, len(many))
	for _, did := range []string{behind, ahead, page, many[0]} {
		colls, err := ix.CollectionsOf(did)
		require.NoError(t, err)
		require.NotContains(t, colls, "a.b.gone", "%s: both sides removed", did)
	}
	colls, err := ix.CollectionsOf(behind)
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.kept"}, colls, "its other collection untouched")
	left, err := ix.ListRepos("a.b.gone", "", 10)
	require.NoError(t, err)
	require.Empty(t, left)
	require.Zero(t, ix.Count("a.b.gone"))

	added, err := ix.AddPairs([]Pair{{"a.b.gone", late}})
	require.NoError(t, err)
	require.Equal(t, 1, added, "after the delete, a write is recorded nowhere and kept")
	listed, err := ix.ListRepos("a.b.gone", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{late}, listed)
	colls, err = ix.CollectionsOf(late)
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.gone"}, colls)
	require.EqualValues(t, 1, ix.Count("a.b.gone"))
}

func TestOpenFailsClearlyOnAFile(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/not-a-dir"
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	_, err := Open(path)
	require.ErrorContains(t, err, path)
}
