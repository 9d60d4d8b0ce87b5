package rocksindex

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// listedTruth walks the index as a reader does: every collection, every listed DID.
func listedTruth(t *testing.T, ix *Index) map[string]int64 {
	t.Helper()
	colls, err := ix.Collections()
	require.NoError(t, err)
	out := map[string]int64{}
	for _, c := range colls {
		dids, err := ix.ListRepos(c, "", 1<<30)
		require.NoError(t, err)
		if len(dids) > 0 {
			out[c] = int64(len(dids))
		}
	}
	return out
}

// countsNow is CollectionCounts as a map.
func countsNow(ix *Index) map[string]int64 {
	out := map[string]int64{}
	for _, cc := range ix.CollectionCounts("", 0) {
		out[cc.Collection] = cc.Count
	}
	return out
}

func TestCountsFollowEveryKindOfWrite(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	a, b, c := "did:plc:aaa", "did:plc:bbb", "did:plc:ccc"
	require.NoError(t, ix.Add("x.y.one", []string{a, b, c}))
	require.NoError(t, ix.Add("x.y.one", []string{a, b})) // a page again counts nothing
	_, err := ix.AddPairs([]Pair{{"x.y.one", a}, {"x.y.two", a}, {"x.y.two", a}, {"x.y.two", b}})
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"x.y.one": 3, "x.y.two": 2}, countsNow(ix))

	require.NoError(t, ix.SetAccountStatus(b, "takendown")) // hidden: out of both counts
	require.Equal(t, map[string]int64{"x.y.one": 2, "x.y.two": 1}, countsNow(ix))
	require.NoError(t, ix.SetAccountStatus(b, "suspended")) // still hidden: no change
	require.NoError(t, ix.Add("x.y.three", []string{b}))    // an inactive account's add: not listed
	require.Equal(t, map[string]int64{"x.y.one": 2, "x.y.two": 1}, countsNow(ix))
	require.NoError(t, ix.SetAccountStatus(b, "")) // listed again, with its new pair
	require.Equal(t, map[string]int64{"x.y.one": 3, "x.y.two": 2, "x.y.three": 1}, countsNow(ix))

	n, err := ix.RemovePairs([]Pair{{"x.y.two", a}, {"x.y.two", a}, {"x.y.two", "did:plc:never"}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, _, err = ix.RemoveAccount(c)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"x.y.one": 2, "x.y.two": 1, "x.y.three": 1}, countsNow(ix))

	_, err = ix.DeleteCollection(context.Background(), "x.y.one", nil)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"x.y.two": 1, "x.y.three": 1}, countsNow(ix))
	require.Equal(t, listedTruth(t, ix), countsNow(ix))
	require.Equal(t, int64(1), ix.Count("x.y.two"))
	require.Zero(t, ix.Count("x.y.one"))

	page := ix.CollectionCounts("x.y.three", 1)
	require.Equal(t, []CollectionCount{{"x.y.two", 1}}, page, "paging by NSID, after excluded")
}

// Concurrent backfill pages, stream batches, removals, status changes and resets: every
// count equals the number of DIDs a reader walks, in memory and after a reopen.
func TestCountsExactUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ix, err := Open(dir)
	require.NoError(t, err)
	colls := []string{"x.y.c0", "x.y.c1", "x.y.c2", "x.y.c3", "x.y.c4"}
	did := func(i int) string { return fmt.Sprintf("did:plc:%06d", i) }
	const dids = 300
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 150 {
				coll := colls[rng.IntN(len(colls))]
				var err error
				switch k := rng.IntN(20); {
				case k < 7: // a backfill page of overlapping DIDs
					page := make([]string, 0, 40)
					for range 40 {
						page = append(page, did(rng.IntN(dids)))
					}
					err = ix.Add(coll, page)
				case k < 13: // a stream batch over several collections
					var ps []Pair
					for range 20 {
						ps = append(ps, Pair{colls[rng.IntN(len(colls))], did(rng.IntN(dids))})
					}
					_, err = ix.AddPairs(ps)
				case k < 16:
					_, err = ix.RemovePairs([]Pair{{coll, did(rng.IntN(dids))}, {coll, did(rng.IntN(dids))}})
				case k < 18:
					err = ix.SetAccountStatus(did(rng.IntN(dids)), []string{"", "takendown", "deactivated"}[rng.IntN(3)])
				case k < 19:
					_, _, err = ix.RemoveAccount(did(rng.IntN(dids)))
				default:
					_, err = ix.DeleteCollection(context.Background(), coll, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	truth := listedTruth(t, ix)
	require.NotEmpty(t, truth)
	require.Equal(t, truth, countsNow(ix))
	ix.Close()

	// Reopened: the counts written with the pairs.
	ix, err = Open(dir)
	require.NoError(t, err)
	require.Equal(t, truth, countsNow(ix))
	// An index from before counts (no marker): counted once at open, to the same answer.
	require.NoError(t, ix.db.DeleteCF(ix.syncWrite, ix.counts.cf, countsVersionKey))
	require.NoError(t, ix.db.PutCF(ix.syncWrite, ix.counts.cf, []byte("x.y.c0"), []byte{0, 0, 0, 0, 0, 0, 0, 99}))
	ix.Close()
	ix, err = Open(dir)
	require.NoError(t, err)
	defer ix.Close()
	require.Equal(t, truth, countsNow(ix))
}
