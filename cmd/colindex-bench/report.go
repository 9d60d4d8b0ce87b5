package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
)

type report struct {
	scaled                       *benchrelay.Dataset
	floor, floorChain, floorRate time.Duration
	chainAlone, ours, seed       result
	recommended, fast            settings
	ceiling                      float64
	zero, zero1000, large        result
	onLarge                      result
	largePairs                   int
}

func printReport(r report) {
	fmt.Println()
	fmt.Printf("Source: 20 ms + 50 µs/DID per request. colindex: %s. Seed: zlay's loop, one collection at a time, 100 ms after every page, limit 1000.\n\n", r.recommended)
	fmt.Println("| run | wall | DIDs/s | pages/s | overhead p50 | overhead p99 | requests | peak req/s at source | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	row := func(res result) {
		if res.name == "" {
			return
		}
		p50, p99, rss := "—", "—", "—" // not measured for the in-process seed loop
		if res.peakRSS > 0 {
			p50, p99 = res.overheadP50.Round(10*time.Microsecond).String(), res.overheadP99.Round(10*time.Microsecond).String()
			rss = fmt.Sprintf("%d MB", res.peakRSS>>20)
		}
		fmt.Printf("| %s | %s | %.0f | %.1f | %s | %s | %d | %d | %s |\n", res.name, res.wall.Round(10*time.Millisecond),
			res.didsPerSec(), res.pagesPerSec(), p50, p99, res.requests, res.peakPerSecond, rss)
	}
	fmt.Printf("| floor (computed: max of longest chain %s, %d requests at the cap %s) | %s | | | | | | | |\n",
		r.floorChain.Round(10*time.Millisecond), r.scaled.Requests(r.recommended.limit), r.floorRate.Round(10*time.Millisecond), r.floor.Round(10*time.Millisecond))
	for _, res := range []result{r.chainAlone, r.ours, r.seed, r.zero, r.zero1000, r.large, r.onLarge} {
		row(res)
	}
	fmt.Printf("| raw index write ceiling (1,000-DID batches, no HTTP, no Postgres) | | %.0f | | | | | | |\n", r.ceiling)

	fmt.Println()
	fmt.Println("| target | measured | holds |")
	fmt.Println("|---|---|---|")
	target := func(name, measured string, ok bool) {
		fmt.Printf("| %s | %s | %s |\n", name, measured, map[bool]string{true: "yes", false: "**no**"}[ok])
	}
	ratio := r.ours.wall.Seconds() / r.floor.Seconds()
	measuredFloor := max(r.floorRate, r.chainAlone.wall)
	target("wall ≤ 1.25 × floor", fmt.Sprintf("%.2f × the computed floor %s (%.2f × the floor with the chain measured alone, %s)",
		ratio, r.floor.Round(10*time.Millisecond), r.ours.wall.Seconds()/measuredFloor.Seconds(), measuredFloor.Round(10*time.Millisecond)), ratio <= 1.25)
	if r.seed.name != "" {
		speedup := r.seed.wall.Seconds() / r.ours.wall.Seconds()
		target("≥ 5× faster than the seed's strategy", fmt.Sprintf("%.1f× (%s vs %s)", speedup,
			r.seed.wall.Round(time.Second), r.ours.wall.Round(100*time.Millisecond)), speedup >= 5)
	}
	burst := 1 // the limiter's burst
	target("peak request rate ≤ cap + one burst", fmt.Sprintf("%d/s (cap %g/s)", r.ours.peakPerSecond, r.recommended.rps),
		float64(r.ours.peakPerSecond) <= r.recommended.rps+float64(burst))
	share := r.zero.didsPerSec() / r.ceiling
	target("zero latency DIDs/s ≥ 70% of the write ceiling", fmt.Sprintf("%.0f%% (%.0f of %.0f DIDs/s, %s)",
		share*100, r.zero.didsPerSec(), r.ceiling, r.fast), share >= 0.70)
	printZero1000Target(r.zero1000, r.ceiling)
	if r.large.name != "" {
		target(fmt.Sprintf("peak RSS ≤ 300 MB during a %dM-pair backfill", r.largePairs/1_000_000),
			fmt.Sprintf("%d MB", r.large.peakRSS>>20), r.large.peakRSS <= 300<<20)
		drop := 1 - r.onLarge.pagesPerSec()/r.zero.pagesPerSec()
		target(fmt.Sprintf("pages/s with %dM pairs in the index within 25%% of an empty index", r.largePairs/1_000_000),
			fmt.Sprintf("%.1f vs %.1f pages/s (%+.0f%%)", r.onLarge.pagesPerSec(), r.zero.pagesPerSec(), -drop*100), drop <= 0.25)
	}
}

func machine() string {
	host, _ := os.Hostname()
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (%s)", model, runtime.NumCPU(), host)
}
