package rocksindex

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAdd1000 writes one page of 1,000 DIDs (2,000 keys, one synced batch).
func BenchmarkAdd1000(b *testing.B) {
	ix, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	n := 0
	page := make([]string, 1000)
	for b.Loop() {
		for i := range page {
			page[i] = fmt.Sprintf("did:plc:%024d", n)
			n++
		}
		if err := ix.Add("app.bsky.feed.post", page); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "DIDs/s")
}

// BenchmarkAddPairsStream applies the stream benchmark's random creates the way the
// firehose applier does: batches of 500 (collection, DID) pairs drawn from 10,000 accounts
// and 50 collections, most of them new to the index; into a fresh index, and into one that
// already holds 4M pairs of other accounts (so the lookups of absent keys go through SST
// files, as on a full index).
//
//	go test -run '^$' -bench AddPairsStream -benchtime 400x ./rocksindex/
func BenchmarkAddPairsStream(b *testing.B) {
	b.Run("fresh", func(b *testing.B) { benchAddPairs(b, 0) })
	b.Run("into 4M pairs", func(b *testing.B) { benchAddPairs(b, 4_000_000) })
}

func benchAddPairs(b *testing.B, preload int) {
	ix, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	coll := func() string { return fmt.Sprintf("com.example.bench.c%02d", rng.IntN(50)) }
	page := make([]string, 10_000)
	for n := 0; n < preload; n += len(page) {
		for i := range page {
			page[i] = fmt.Sprintf("did:plc:%024x", rng.Uint64())
		}
		if err := ix.Add(coll(), page); err != nil {
			b.Fatal(err)
		}
	}
	dids := make([]string, 10_000)
	for i := range dids {
		dids[i] = fmt.Sprintf("did:plc:%024x", rng.Uint64())
	}
	batch := make([]Pair, 500)
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = Pair{Collection: coll(), DID: dids[rng.IntN(len(dids))]}
		}
		if _, err := ix.AddPairs(batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/pair")
}

// BenchmarkSweepPage applies the statuses of a sweep's page in which every one of 1,000
// accounts, each with 3 pairs, turns out deleted: the longest the account lock is held for
// a page (the stream's adds wait meanwhile), and the synced write.
//
//	go test -run '^$' -bench SweepPage ./rocksindex/
func BenchmarkSweepPage(b *testing.B) {
	ix, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	n := 0
	for b.Loop() {
		b.StopTimer()
		statuses := make(map[string]string, 1000)
		var pairs []Pair
		for range 1000 {
			did := fmt.Sprintf("did:plc:%024d", n)
			n++
			statuses[did] = StatusDeleted
			for _, c := range []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"} {
				pairs = append(pairs, Pair{Collection: c, DID: did})
			}
		}
		if _, err := ix.AddPairs(pairs); err != nil {
			b.Fatal(err)
		}
		since := ix.StampOf("")
		b.StartTimer()
		if _, _, err := ix.ApplyStatusesSince(statuses, since); err != nil {
			b.Fatal(err)
		}
	}
}
