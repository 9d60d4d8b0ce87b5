package rocksindex

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// The set of pairs known whole never hides a pair that was removed: after each way a pair
// leaves the index, the stream's next create of it writes it again.
func TestPresentPairsNeverHideARemoval(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	const coll, did = "x.y.z", "did:plc:aaa"
	pair := []Pair{{Collection: coll, DID: did}}
	listed := func() []string {
		dids, err := ix.ListRepos(coll, "", 10)
		require.NoError(t, err)
		return dids
	}
	addAgain := func(what string) {
		t.Helper()
		n, err := ix.AddPairs(pair)
		require.NoError(t, err)
		require.Equal(t, 1, n, "after %s the create writes the pair again", what)
		require.Equal(t, []string{did}, listed(), what)
		require.Equal(t, int64(1), ix.Count(coll), what)
		n, err = ix.AddPairs(pair)
		require.NoError(t, err)
		require.Zero(t, n, "a repeat after %s writes nothing", what)
	}
	addAgain("nothing")

	_, err := ix.RemovePairs(pair)
	require.NoError(t, err)
	require.Empty(t, listed())
	addAgain("a proved removal")

	_, err = ix.DeleteCollection(context.Background(), coll, nil)
	require.NoError(t, err)
	require.Empty(t, listed())
	addAgain("a reset")

	_, _, err = ix.RemoveAccount(did)
	require.NoError(t, err)
	n, err := ix.AddPairs(pair)
	require.NoError(t, err)
	require.Zero(t, n, "a deleted account is not put back")
	require.Empty(t, listed())
	require.Zero(t, ix.Count(coll))
}

func TestPresentStartsAgainWhenFull(t *testing.T) {
	t.Parallel()
	p := present{max: 3}
	a, b, c, d := Pair{"c", "a"}, Pair{"c", "b"}, Pair{"c", "c"}, Pair{"c", "d"}
	p.add([]Pair{a, b, c})
	require.Empty(t, p.missing([]Pair{a, b, c}))
	p.add([]Pair{d})
	require.Equal(t, []Pair{a, b, c}, p.missing([]Pair{a, b, c, d}), "full: emptied, then d")
}
