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
// and 50 collections, into a fresh index; most of them add a pair.
//
//	go test -run '^$' -bench AddPairsStream -benchtime 400x ./rocksindex/
func BenchmarkAddPairsStream(b *testing.B) {
	ix, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	dids := make([]string, 10_000)
	for i := range dids {
		dids[i] = fmt.Sprintf("did:plc:%024x", rng.Uint64())
	}
	batch := make([]Pair, 500)
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = Pair{Collection: fmt.Sprintf("com.example.bench.c%02d", rng.IntN(50)), DID: dids[rng.IntN(len(dids))]}
		}
		if _, err := ix.AddPairs(batch); err != nil {
			b.Fatal(err)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/pair")
}
