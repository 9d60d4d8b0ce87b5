package proof

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/stretchr/testify/require"
)

// pool holds collections with shared prefixes, so neighbours across collection boundaries are
// often a near miss ("post.draft/", "post/", "postgate/").
var pool = []string{
	post, postDraft, postgate, like, likes, follow, profile,
	"app.bsky.graph.block", "app.bsky.graph.list", "app.bsky.graph.listitem",
	"com.example.x", "com.example.x.y", "com.example.xy",
}

// TestRandomCommits checks Decide against the truth on random repos and random commits: a
// verdict that is not Unknown must match the full repository (Gone iff no key of the
// collection remains), and valid commits must be decided.
func TestRandomCommits(t *testing.T) {
	t.Parallel()
	const commitsPerRepo = 20
	seeds := 128
	if testing.Short() {
		seeds = 16
	}
	tallies := make([]tally, seeds)
	t.Run("seeds", func(t *testing.T) {
		for seed := range seeds {
			t.Run(fmt.Sprint(seed), func(t *testing.T) {
				t.Parallel()
				tallies[seed] = randomRepo(t, uint64(seed), commitsPerRepo)
			})
		}
	})
	var sum tally
	for _, x := range tallies {
		sum.commits += x.commits
		sum.verdicts += x.verdicts
		sum.decided += x.decided
		sum.gone += x.gone
		sum.indigoRejected += x.indigoRejected
	}
	if sum.verdicts == 0 {
		t.Skip("no seed ran (a -run filter?)")
	}
	t.Logf("decided %d of %d verdicts (%.2f%%; %d gone) on %d valid commits with deletes; indigo's VerifyCommitMessage rejected %d of those commits",
		sum.decided, sum.verdicts, 100*float64(sum.decided)/float64(sum.verdicts), sum.gone, sum.commits, sum.indigoRejected)
	require.Equal(t, sum.verdicts, sum.decided, "every verdict on a valid commit should be decided")
	require.NotZero(t, sum.gone)
}

// FuzzDecide explores more random repositories than TestRandomCommits, one per seed:
// go test -run='^$' -fuzz=FuzzDecide -fuzztime=1m ./firehose/proof/
func FuzzDecide(f *testing.F) {
	f.Add(uint64(1000))
	f.Fuzz(func(t *testing.T, seed uint64) {
		x := randomRepo(t, seed, 10)
		require.Equal(t, x.verdicts, x.decided, "every verdict on a valid commit should be decided")
	})
}

type tally struct {
	commits        int // with a delete
	verdicts       int
	decided        int
	gone           int
	indigoRejected int // commits repo.VerifyCommitMessage fails
}

// randomRepo runs commits random commits on a random repository and checks the verdicts.
func randomRepo(t *testing.T, seed uint64, commits int) (x tally) {
	rng := rand.New(rand.NewPCG(seed, 0x70726f6f66))
	counts := map[string]int{}
	for range 1 + rng.IntN(6) {
		// Mostly small collections, the ones that empty; sometimes a large one, for depth.
		n := 1 + rng.IntN(4)
		if rng.IntN(4) == 0 {
			n = 1 + rng.IntN(600)
		}
		counts[pool[rng.IntN(len(pool))]] += n
	}
	r := newTestRepo(t, counts)
	for c := range commits {
		var ops []testOp
		used := map[string]bool{}
		for range 1 + rng.IntN(5) {
			colls := r.collections()
			switch k := rng.IntN(10); {
			case k < 6 && len(colls) > 0: // delete, favouring the first keys of a collection
				ps := r.in(colls[rng.IntN(len(colls))])
				p := ps[rng.IntN(min(len(ps), 3))]
				if !used[p] {
					used[p] = true
					ops = append(ops, del(p))
				}
			case k < 9:
				ops = append(ops, create(r.path(pool[rng.IntN(len(pool))])))
			case len(colls) > 0:
				ps := r.in(colls[rng.IntN(len(colls))])
				p := ps[rng.IntN(len(ps))]
				if !used[p] {
					used[p] = true
					ops = append(ops, update(p))
				}
			}
		}
		if len(ops) == 0 {
			continue
		}
		evt := r.commit(ops...)
		requireCanonical(t, r)
		requireSameAsIndigo(t, evt)
		got := Decide(context.Background(), evt)
		want := map[string]bool{}
		for _, op := range ops {
			if op.action == "delete" {
				coll, _ := collectionOf(op.path)
				want[coll] = true
			}
		}
		require.Len(t, got, len(want), "commit %d: %v", c, got)
		if len(want) == 0 {
			continue
		}
		x.commits++
		if _, err := repo.VerifyCommitMessage(context.Background(), evt); err != nil {
			x.indigoRejected++
		}
		for coll := range want {
			v := got[coll]
			x.verdicts++
			if v.Outcome == Unknown {
				t.Logf("commit %d, %s: unknown (%s): %v", c, coll, v.Reason, v.Err)
				continue
			}
			x.decided++
			wantOutcome := Gone
			if r.has(coll) {
				wantOutcome = Kept
			}
			require.Equal(t, wantOutcome, v.Outcome, "commit %d, %s (ops %v)", c, coll, ops)
			if v.Outcome == Gone {
				x.gone++
			}
		}
	}
	return x
}

// requireCanonical checks the producer, not Decide: the repository's tree after a commit must
// be the one built from its records afresh, as on a PDS, or a prevData mismatch later would
// be the builder's fault.
func requireCanonical(t *testing.T, r *testRepo) {
	fresh, err := mst.LoadTreeFromMap(maps.Clone(r.records))
	require.NoError(t, err)
	want, err := fresh.RootCID()
	require.NoError(t, err)
	tree := r.tree.Copy()
	got, err := tree.RootCID()
	require.NoError(t, err)
	require.Equal(t, want.String(), got.String(), "the test repository's MST is not canonical")
}
