package proof

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo"
)

// benchCommits returns n one-delete commits of a 2,000-record, 20-collection repository (a
// busy account; its MST is three or four levels deep), the shape of most deletes on the
// firehose: one like, post or follow removed.
func benchCommits(b testing.TB, n int) []*comatproto.SyncSubscribeRepos_Commit {
	r := newTestRepo(b, deepCounts())
	rng := rand.New(rand.NewPCG(7, 7))
	colls := r.collections()
	evts := make([]*comatproto.SyncSubscribeRepos_Commit, n)
	for i := range evts {
		ps := r.in(colls[rng.IntN(len(colls))])
		if len(ps) == 0 {
			ps = r.in(colls[0])
		}
		evts[i] = r.commit(del(ps[rng.IntN(len(ps))]))
	}
	return evts
}

// BenchmarkDecide measures deciding one-delete commits, and indigo's VerifyCommitMessage on
// the same commits for scale (Decide does the same checks, then two neighbour lookups).
//
//	go test -run='^$' -bench=Decide -benchmem ./firehose/proof/
func BenchmarkDecide(b *testing.B) {
	evts := benchCommits(b, 256)
	ctx := context.Background()
	b.Run("decide", func(b *testing.B) {
		i := 0
		for b.Loop() {
			v := Decide(ctx, evts[i%len(evts)])
			if len(v) != 1 {
				b.Fatalf("commit %d: %v", i, v)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("decide, 20-record repository", func(b *testing.B) {
		// The stream benchmark's shape: 10,000 accounts of about 20 records each.
		small := smallRepoCommits(b, 64)
		i := 0
		for b.Loop() {
			if v := Decide(ctx, small[i%len(small)]); len(v) != 1 {
				b.Fatalf("commit %d: %v", i, v)
			}
			i++
		}
	})
	b.Run("decide parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(evts))
			for pb.Next() {
				Decide(ctx, evts[i%len(evts)])
				i++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("indigo VerifyCommitMessage", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := repo.VerifyCommitMessage(ctx, evts[i%len(evts)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// smallRepoCommits returns n one-delete commits, each of its own 20-record repository over 10
// collections (an MST of one or two levels).
func smallRepoCommits(b testing.TB, n int) []*comatproto.SyncSubscribeRepos_Commit {
	counts := map[string]int{}
	for i := range 10 {
		counts[fmt.Sprintf("com.example.c%02d", i)] = 2
	}
	rng := rand.New(rand.NewPCG(7, 8))
	evts := make([]*comatproto.SyncSubscribeRepos_Commit, n)
	for i := range evts {
		r := newTestRepo(b, counts)
		colls := r.collections()
		ps := r.in(colls[rng.IntN(len(colls))])
		evts[i] = r.commit(del(ps[rng.IntN(len(ps))]))
	}
	return evts
}
