package rocksindex

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkListRepos pages every collection of a 1M-pair index (100 collections of 10,000
// DIDs, loaded as a backfill writes them) to its end at limit 1000, as it is after the
// backfill and after a full compaction.
//
//	go test -run '^$' -bench ListRepos -benchtime 20x ./rocksindex/
func BenchmarkListRepos(b *testing.B) {
	ix, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	const colls, per = 100, 10_000
	names := make([]string, colls)
	page := make([]string, 1000)
	for c := range names {
		names[c] = fmt.Sprintf("com.example.bench.c%03d", c)
		for n := 0; n < per; n += len(page) {
			for i := range page {
				page[i] = fmt.Sprintf("did:plc:%024x", rng.Uint64())
			}
			if err := ix.Add(names[c], page); err != nil {
				b.Fatal(err)
			}
		}
	}
	walk := func(b *testing.B) {
		dids := 0
		for b.Loop() {
			for _, c := range names {
				after := ""
				for {
					got, err := ix.ListRepos(c, after, 1000)
					if err != nil {
						b.Fatal(err)
					}
					dids += len(got)
					if len(got) < 1000 {
						break
					}
					after = got[len(got)-1]
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(dids), "ns/DID")
	}
	b.Run("after the backfill", walk)
	if err := ix.Compact(); err != nil {
		b.Fatal(err)
	}
	b.Run("compacted", walk)
}
