package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
)

// zeroAtZlayLimit is the zero-latency run at zlay's page size, colindex's default: the size
// a source that refuses larger pages forces on every chain.
var zeroAtZlayLimit = settings{concurrency: 8, rps: 0, pause: 0, limit: 1000}

// zero1000Name names the scenario in the log and in the table.
const zero1000Name = "zero latency at limit 1000"

// zero1000 pages the scaled data set from a zero-latency source with no cap at zlay's page
// size (issue 13, item 2). At limit 10,000 the largest collection is a 30-page chain and
// throughput is the index's; at limit 1,000 it is a 300-page chain, and what each link costs
// beyond its own work (River handing the next page over, the wait for the index while the
// other workers write, the commit) decides whether it finishes with the rest or long after.
func (b *bench) zero1000(ctx context.Context, data *benchrelay.Dataset) (result, error) {
	return b.backfill(ctx, scenario{name: zero1000Name, data: data, settings: zeroAtZlayLimit})
}

// zero1000Alone runs just that scenario and the ceiling, and prints its target (-only zero1000).
func (b *bench) zero1000Alone(ctx context.Context, data *benchrelay.Dataset) error {
	ceiling, err := writeCeiling(data, b.o.workDir)
	if err != nil {
		return err
	}
	res, err := b.zero1000(ctx, data)
	if err != nil {
		return err
	}
	fmt.Println()
	fmt.Println("| target | measured | holds |")
	fmt.Println("|---|---|---|")
	printZero1000Target(res, ceiling)
	return nil
}

// printZero1000Target prints the scenario's row of the targets table.
func printZero1000Target(res result, ceiling float64) {
	if res.name == "" {
		return
	}
	share := res.didsPerSec() / ceiling
	ok := map[bool]string{true: "yes", false: "**no**"}[share >= 0.70]
	fmt.Printf("| zero latency at limit 1000 ≥ 70%% of the write ceiling | %.0f%% (%.0f of %.0f DIDs/s, %s; overhead p50 %s, p99 %s) | %s |\n",
		share*100, res.didsPerSec(), ceiling, zeroAtZlayLimit, res.overheadP50.Round(10*time.Microsecond),
		res.overheadP99.Round(10*time.Microsecond), ok)
	log.Printf("%s: %.0f%% of the write ceiling", zero1000Name, share*100)
}
