// Command colindex-bench measures a real `colindex serve` backfilling from the synthetic,
// network-shaped source in internal/benchrelay, and prints a table with the targets:
//
//   - the floor: the longest collection's chain at the source's latency, or the total number
//     of requests at the rate cap, whichever is longer (computed, and measured by paging the
//     longest collection alone);
//   - colindex at the recommended settings, and the seed's strategy (one collection at a
//     time, 100 ms pause, 1,000 per page), on the same source;
//   - zero-latency throughput against the raw index write ceiling (the same DIDs written
//     straight into a fresh index in 1,000-DID batches, no HTTP, no Postgres), at limit
//     10,000 and at zlay's 1,000;
//   - peak RSS during a large backfill, and pages/s with that backfill already in the index.
//
// Run it with `make bench` (flags: `make bench BENCH_FLAGS="-seed=false"`).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
)

type options struct {
	colindex    string
	adminURL    string
	collections int
	pairs       int
	largePairs  int
	seed        bool
	workDir     string
	only        string
	// sampleWorkers logs how many page workers are busy at each poll (for tuning).
	sampleWorkers bool
	// streamCommits sizes the firehose scenario (0 skips it); collectiondir is indigo's
	// binary to compare with ("" installs it into bin/).
	streamCommits int
	collectiondir string
	// rehearsalPairs sizes the full-network rehearsal (-only rehearsal).
	rehearsalPairs int
}

func main() {
	var o options
	flag.StringVar(&o.colindex, "colindex", "bin/colindex", "the colindex binary to measure")
	flag.StringVar(&o.adminURL, "pg", envOr("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"Postgres server URL (a database is created per scenario)")
	flag.IntVar(&o.collections, "collections", 1000, "collections in the scaled data set")
	flag.IntVar(&o.pairs, "pairs", 1_000_000, "(DID, collection) pairs in the scaled data set")
	flag.IntVar(&o.largePairs, "large-pairs", 10_000_000, "pairs in the memory/large-index scenario (0 skips it)")
	flag.BoolVar(&o.seed, "seed", true, "also measure the seed's strategy (about 5 minutes at the default size)")
	flag.StringVar(&o.workDir, "work", "", "directory for indexes and logs (default: a temp dir, removed after)")
	flag.StringVar(&o.only, "only", "", "run just this scenario: colindex, alone, zero, zero1000, large, stream, read or rehearsal (zero1000, stream, read and rehearsal print their own tables)")
	flag.BoolVar(&o.sampleWorkers, "sample-workers", false, "log busy page workers at each poll (for tuning)")
	flag.IntVar(&o.streamCommits, "stream-commits", 100_000, "#commit events in the firehose scenario (0 skips it)")
	flag.StringVar(&o.collectiondir, "collectiondir", "", "indigo's collectiondir binary to compare the stream with (default: go install it into bin/)")
	flag.IntVar(&o.rehearsalPairs, "rehearsal-pairs", 61_000_000, "pairs in the full-network rehearsal (-only rehearsal)")
	flag.Parse()
	log.SetFlags(log.Ltime)

	if o.workDir == "" {
		dir, err := os.MkdirTemp("", "colindex-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		o.workDir = dir
	}
	ctx := context.Background()
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o options) error {
	scaled := benchrelay.NewDataset(benchrelay.Spec{Collections: o.collections, Pairs: o.pairs, LargestShare: 0.3, Prefix: "com.bench"})
	netLatency := benchrelay.Latency{Base: 20 * time.Millisecond, PerDID: 50 * time.Microsecond}
	b := &bench{o: o}
	fmt.Printf("colindex benchmark: %d collections, %d pairs (largest %d), on %s\n\n",
		len(scaled.Names), scaled.Pairs(), scaled.Sizes[0], machine())

	// 1. The recommended settings against a network-like source.
	recommended := settings{concurrency: 8, rps: 50, pause: 0, limit: 1000}
	floorChain := chainTime(scaled, 0, netLatency, recommended)
	floorRate := time.Duration(float64(scaled.Requests(recommended.limit)) / recommended.rps * float64(time.Second))
	floor := max(floorChain, floorRate)
	log.Printf("floor: longest chain %s, requests at the cap %s", floorChain, floorRate)

	switch o.only {
	case "":
	case "colindex":
		_, err := b.backfill(ctx, scenario{name: "colindex", data: scaled, latency: netLatency, settings: recommended})
		return err
	case "alone":
		_, err := b.backfill(ctx, scenario{name: "longest collection alone", data: scaled, latency: netLatency,
			settings: recommended, only: []string{scaled.Names[0]}})
		return err
	case "zero":
		_, err := b.backfill(ctx, scenario{name: "zero latency", data: scaled,
			settings: settings{concurrency: 8, rps: 0, pause: 0, limit: 10000}})
		return err
	case "zero1000":
		return b.zero1000Alone(ctx, scaled) // zero1000.go: zero latency at zlay's page size
	case "large":
		big := benchrelay.NewDataset(benchrelay.Spec{Collections: o.collections, Pairs: o.largePairs, LargestShare: 0.3, Prefix: "com.large"})
		_, err := b.backfill(ctx, scenario{name: fmt.Sprintf("%dM pairs", o.largePairs/1_000_000), data: big,
			settings: settings{concurrency: 8, rps: 0, pause: 0, limit: 10000}})
		return err
	case "stream":
		return b.streamReport(ctx)
	case "read":
		return b.readReport(ctx) // read.go: paging both servers side by side
	case "rehearsal":
		return b.rehearsal(ctx) // rehearsal.go: the whole network's shape on this machine
	default:
		return fmt.Errorf("-only: unknown scenario %q", o.only)
	}

	chainAlone, err := b.backfill(ctx, scenario{name: "longest collection alone", data: scaled, latency: netLatency,
		settings: recommended, only: []string{scaled.Names[0]}})
	if err != nil {
		return err
	}
	ours, err := b.backfill(ctx, scenario{name: "colindex", data: scaled, latency: netLatency, settings: recommended})
	if err != nil {
		return err
	}
	var seed result
	if o.seed {
		seed, err = b.seedStrategy(ctx, scaled, netLatency)
		if err != nil {
			return err
		}
	}

	// 2. Throughput: zero latency, no pause, no cap, against the raw write ceiling.
	ceiling, err := writeCeiling(scaled, o.workDir)
	if err != nil {
		return err
	}
	fast := settings{concurrency: 8, rps: 0, pause: 0, limit: 10000}
	zero, err := b.backfill(ctx, scenario{name: "zero latency", data: scaled, settings: fast})
	if err != nil {
		return err
	}
	zero1000, err := b.zero1000(ctx, scaled)
	if err != nil {
		return err
	}

	// 3. Memory during a large backfill, then pages/s with it already in the index.
	var large, onLarge result
	if o.largePairs > 0 {
		big := benchrelay.NewDataset(benchrelay.Spec{Collections: o.collections, Pairs: o.largePairs, LargestShare: 0.3, Prefix: "com.large"})
		large, err = b.backfill(ctx, scenario{name: fmt.Sprintf("%dM pairs", o.largePairs/1_000_000), data: big, settings: fast, keep: true})
		if err != nil {
			return err
		}
		onLarge, err = b.backfill(ctx, scenario{name: "zero latency on the large index", data: scaled, settings: fast, reuse: large.state})
		if err != nil {
			return err
		}
		b.drop(ctx, large.state)
	}

	printReport(report{
		scaled: scaled, floor: floor, floorChain: floorChain, floorRate: floorRate, chainAlone: chainAlone,
		ours: ours, seed: seed, recommended: recommended, ceiling: ceiling, zero: zero, zero1000: zero1000, fast: fast,
		large: large, onLarge: onLarge, largePairs: o.largePairs,
	})
	if o.streamCommits > 0 {
		return b.streamReport(ctx)
	}
	return nil
}

// chainTime is how long paging collection i takes one page after another at the source's
// latency: the physical floor of that collection, whatever the concurrency.
func chainTime(d *benchrelay.Dataset, i int, l benchrelay.Latency, s settings) time.Duration {
	var t time.Duration
	left := d.Sizes[i]
	for page := 0; ; page++ {
		n := min(left, s.limit)
		t += l.Base + time.Duration(n)*l.PerDID
		if page > 0 {
			t += s.pause
		}
		left -= n
		if n < s.limit {
			return t
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
