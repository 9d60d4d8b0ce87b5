package rocksindex

import (
	"fmt"
	"sync"
	"testing"

	"github.com/linxGnu/grocksdb"
	"github.com/stretchr/testify/require"
)

func TestRemoveAccountRemovesEveryPairAndIsFinal(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	gone, kept := "did:plc:gone", "did:plc:kept"
	require.NoError(t, ix.Add("a.b.one", []string{gone, kept}))
	n, err := ix.AddStream(gone, []string{"a.b.two", "a.b.one"})
	require.NoError(t, err)
	require.Equal(t, 1, n, "a.b.one was already there")

	removed, already, err := ix.RemoveAccount(gone)
	require.NoError(t, err)
	require.Equal(t, 2, removed)
	require.False(t, already)
	colls, err := ix.CollectionsOf(gone)
	require.NoError(t, err)
	require.Empty(t, colls)
	for coll, want := range map[string][]string{"a.b.one": {kept}, "a.b.two": nil} {
		got, err := ix.listRaw(coll, "", 10)
		require.NoError(t, err)
		require.Equal(t, want, got, coll)
	}

	// Final: a stale page, a replayed commit and a later active status change nothing.
	require.NoError(t, ix.Add("a.b.one", []string{gone, kept}))
	n, err = ix.AddStream(gone, []string{"a.b.three"})
	require.NoError(t, err)
	require.Zero(t, n)
	require.NoError(t, ix.SetAccountStatus(gone, ""))
	colls, err = ix.CollectionsOf(gone)
	require.NoError(t, err)
	require.Empty(t, colls)
	st, err := ix.AccountStatus(gone)
	require.NoError(t, err)
	require.Equal(t, StatusDeleted, st)
	_, already, err = ix.RemoveAccount(gone)
	require.NoError(t, err)
	require.True(t, already)
}

func TestInactiveAccountsAreKeptButNotListed(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	dids := make([]string, 10)
	for i := range dids {
		dids[i] = fmt.Sprintf("did:plc:%024d", i)
	}
	require.NoError(t, ix.Add("a.b.c", dids))
	// Hidden: the first, two in the middle (neighbours), the last.
	hidden := map[string]string{dids[0]: "takendown", dids[4]: "suspended", dids[5]: "deactivated", dids[9]: "whatever"}
	for did, st := range hidden {
		require.NoError(t, ix.SetAccountStatus(did, st))
	}
	var listed []string
	for _, d := range dids {
		if hidden[d] == "" {
			listed = append(listed, d)
		}
	}
	all, err := ix.ListRepos("a.b.c", "", 100)
	require.NoError(t, err)
	require.Equal(t, listed, all)
	// Paging skips hidden DIDs without short pages being mistaken for the end.
	var paged []string
	after := ""
	for {
		page, err := ix.ListRepos("a.b.c", after, 2)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		require.Len(t, page, min(2, len(listed)-len(paged)))
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	require.Equal(t, listed, paged)
	// Kept: cbr still has them, and active=true lists them again.
	colls, err := ix.CollectionsOf(dids[4])
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.c"}, colls)
	require.NoError(t, ix.SetAccountStatus(dids[4], ""))
	all, err = ix.ListRepos("a.b.c", "", 100)
	require.NoError(t, err)
	require.Contains(t, all, dids[4])
}

// The backfill/stream rule under contention: pages that include a DID race its removal, and
// once RemoveAccount has returned the DID is in no collection, whatever the interleaving.
func TestAddNeverPutsBackARemovedAccount(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	for round := range 50 {
		did := fmt.Sprintf("did:plc:race%020d", round)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 20 {
					coll := fmt.Sprintf("a.b.c%d", (w*20+i)%7)
					require.NoError(t, ix.Add(coll, []string{did, "did:plc:other"}))
				}
			})
		}
		_, _, err := ix.RemoveAccount(did)
		require.NoError(t, err)
		wg.Wait()
		colls, err := ix.CollectionsOf(did)
		require.NoError(t, err)
		require.Empty(t, colls, "round %d", round)
		for c := range 7 {
			got, err := ix.listRaw(fmt.Sprintf("a.b.c%d", c), "", 10)
			require.NoError(t, err)
			require.NotContains(t, got, did)
		}
	}
}

// Accounts survive a reopen (the acct family is in Open's list).
func TestAccountStatusSurvivesReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ix, err := Open(dir)
	require.NoError(t, err)
	require.NoError(t, ix.Add("a.b.c", []string{"did:plc:a", "did:plc:b"}))
	require.NoError(t, ix.SetAccountStatus("did:plc:a", "takendown"))
	require.NoError(t, ix.SyncWAL())
	ix.Close()
	ix, err = Open(dir)
	require.NoError(t, err)
	defer ix.Close()
	got, err := ix.ListRepos("a.b.c", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:b"}, got)
}

// An index made before the acct family existed opens with it added, its pairs intact.
func TestOpenAddsTheAcctFamilyToAnOlderIndex(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := newDBOptions()
	opts := o.large
	db, handles, err := grocksdb.OpenDbColumnFamilies(opts, dir, []string{cfDefault, cfRBC, cfCBR}, []*grocksdb.Options{opts, opts, opts})
	require.NoError(t, err)
	wo := grocksdb.NewDefaultWriteOptions()
	require.NoError(t, db.PutCF(wo, handles[1], rbcKey("a.b.c", "did:plc:a"), nil))
	require.NoError(t, db.PutCF(wo, handles[2], cbrKey("did:plc:a", "a.b.c"), nil))
	wo.Destroy()
	for _, h := range handles {
		h.Destroy()
	}
	db.Close()
	o.destroy()

	ix, err := Open(dir)
	require.NoError(t, err)
	defer ix.Close()
	got, err := ix.ListRepos("a.b.c", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:a"}, got)
	n, err := ix.AddStream("did:plc:a", []string{"a.b.c"})
	require.NoError(t, err)
	require.Zero(t, n, "both sides present: nothing written")
}

// A pair with one side missing (a reset cut between its two deletes) is written whole again.
func TestAddStreamRepairsAHalfWrittenPair(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	n, err := ix.AddStream("did:plc:a", []string{"a.b.c", "a.b.d"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.NoError(t, ix.db.DeleteCF(ix.acct.noSync, ix.cbr, cbrKey("did:plc:a", "a.b.c")))
	ix.present.forgetCollection("a.b.c") // as DeleteCollection does before its cbr deletes
	n, err = ix.AddStream("did:plc:a", []string{"a.b.c", "a.b.d"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	colls, err := ix.CollectionsOf("did:plc:a")
	require.NoError(t, err)
	require.Equal(t, []string{"a.b.c", "a.b.d"}, colls)
	// The other side missing: its cbr key is not even read (rbc is), and it is written whole.
	require.NoError(t, ix.db.DeleteCF(ix.acct.noSync, ix.rbc, rbcKey("a.b.d", "did:plc:a")))
	ix.present.forgetCollection("a.b.d")
	n, err = ix.AddStream("did:plc:a", []string{"a.b.c", "a.b.d"})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	dids, err := ix.ListRepos("a.b.d", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:a"}, dids)
}

// The one reading of an account's state, for the stream and the sweeps alike.
func TestStatusOf(t *testing.T) {
	t.Parallel()
	require.Empty(t, StatusOf(true, ""))
	require.Empty(t, StatusOf(true, "takendown"), "active wins over a stray status")
	require.Equal(t, "takendown", StatusOf(false, "takendown"))
	require.Equal(t, StatusDeleted, StatusOf(false, "deleted"))
	require.Equal(t, "inactive", StatusOf(false, ""), "not active is still not active")
}
