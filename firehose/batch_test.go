package firehose

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/rocksindex"
)

// A batch must leave the index exactly as its events applied one by one in stream order
// would (batch.go): the same pairs, account statuses, tombstones and counts. Random batches
// of a few accounts mix multi-op commits that create and delete (often the collection's last
// record), deletes the proof cannot settle, takedowns, reactivations, account deletions and
// #identity events; one index takes them one at a time, another a batch at a time, a third
// each batch twice (a replay after a crash must change nothing).
func TestBatchEqualsEventsOneByOne(t *testing.T) {
	t.Parallel()
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			batchEqualsOneByOne(t, seed)
		})
	}
}

func batchEqualsOneByOne(t *testing.T, seed uint64) {
	b := setup(t)
	open := func() (*Firehose, *rocksindex.Index) {
		ix, err := rocksindex.Open(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { ix.Close() })
		f, err := New(b.config(ix))
		require.NoError(t, err)
		return f, ix
	}
	oneByOne, err := New(b.config(b.ix))
	require.NoError(t, err)
	batched, batchedIx := open()
	twice, twiceIx := open() // takes each batch twice

	rng := rand.New(rand.NewPCG(seed, 7))
	accts := []*fakerelay.Account{newAccount(t, 100), newAccount(t, 101), newAccount(t, 102)}
	records := map[string]map[string]string{} // DID → path → collection
	for _, a := range accts {
		records[a.DID] = map[string]string{}
	}
	n := 0
	event := func() *events.XRPCStreamEvent {
		a := accts[rng.IntN(len(accts))]
		switch rng.IntN(16) {
		case 0:
			return &events.XRPCStreamEvent{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{Did: a.DID, Time: "2026-01-01T00:00:00Z"}}
		case 1:
			ev := &comatproto.SyncSubscribeRepos_Account{Did: a.DID, Active: true, Time: "2026-01-01T00:00:00Z"}
			if status := []string{"", "takendown", "deleted"}[rng.IntN(3)]; status != "" {
				ev.Active, ev.Status = false, &status
			}
			return &events.XRPCStreamEvent{RepoAccount: ev}
		}
		var ops []fakerelay.Op
		used := map[string]bool{}
		for range 1 + rng.IntN(3) {
			var existing []string
			for p := range records[a.DID] {
				if !used[p] {
					existing = append(existing, p)
				}
			}
			slices.Sort(existing)
			if len(existing) > 0 && rng.IntN(2) == 0 {
				p := existing[rng.IntN(len(existing))]
				used[p] = true
				coll := records[a.DID][p]
				ops = append(ops, fakerelay.Delete(coll, strings.TrimPrefix(p, coll+"/")))
				delete(records[a.DID], p)
				continue
			}
			coll := []string{post, like}[rng.IntN(2)]
			n++
			rkey := fmt.Sprintf("3k%04d", n)
			used[coll+"/"+rkey] = true
			records[a.DID][coll+"/"+rkey] = coll
			ops = append(ops, fakerelay.Create(coll, rkey))
		}
		evt, err := a.Commit(ops...)
		require.NoError(t, err)
		if rng.IntN(6) == 0 {
			evt.Blocks = nil // the proof cannot settle its deletes
		}
		return &events.XRPCStreamEvent{RepoCommit: evt}
	}
	for round := range 6 {
		var batch []*events.XRPCStreamEvent
		for range 1 + rng.IntN(12) {
			batch = append(batch, event())
		}
		for _, xev := range batch {
			require.NoError(t, oneByOne.applyBatch(t.Context(), []*events.XRPCStreamEvent{xev}))
		}
		require.NoError(t, batched.applyBatch(t.Context(), batch))
		require.Equal(t, indexState(t, b.ix, accts), indexState(t, batchedIx, accts), "round %d", round)
		// A replay after an account deletion drops the account's adds; its deletes must not
		// leave tombstones the first pass did not (RemovePairs writes none for it).
		for range 2 {
			require.NoError(t, twice.applyBatch(t.Context(), batch))
		}
		require.Equal(t, indexState(t, b.ix, accts), indexState(t, twiceIx, accts), "round %d replayed", round)
	}
}

// indexState is what the index says of accts: each one's collections, status and
// tombstones, and the counts of every collection.
func indexState(t *testing.T, ix *rocksindex.Index, accts []*fakerelay.Account) []string {
	var out []string
	for _, a := range accts {
		colls, err := ix.CollectionsOf(a.DID)
		require.NoError(t, err)
		slices.Sort(colls)
		status, err := ix.AccountStatus(a.DID)
		require.NoError(t, err)
		line := fmt.Sprintf("%s %v status=%q", a.DID, colls, status)
		for _, c := range []string{post, like} {
			removed, err := ix.Removed(c, a.DID)
			require.NoError(t, err)
			if removed {
				line += " tombstone:" + c
			}
		}
		out = append(out, line)
	}
	for _, cc := range ix.CollectionCounts("", 0) {
		out = append(out, fmt.Sprintf("count %s=%d", cc.Collection, cc.Count))
	}
	return out
}
