package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
	"github.com/colindex/colindex/internal/fakerelay"
)

// streamLag appends pre-built events to a live relay at rate per second for the given
// number of events, while colindex follows it, and returns the lag of every event from its
// append at the relay to colindex's durable cursor passing it (polled every 5 ms, so each
// figure is at most 5 ms late).
func (b *bench) streamLag(ctx context.Context, l *streamLog, rate int) ([]time.Duration, error) {
	relay := fakerelay.Start()
	defer relay.Close()
	p, err := b.startColindex(ctx, "stream-lag", "COLINDEX_FIREHOSE_URL="+relay.URL())
	if err != nil {
		return nil, err
	}
	defer p.stop()
	// Connected before the first event: with no cursor, the follower starts at the tail.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if relay.Connections() > 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("colindex never connected (log: %s)", p.log)
		}
	}
	appended := make([]time.Time, len(l.events)+1) // by seq
	errc := make(chan error, 1)
	go func() {
		start := time.Now()
		for i, e := range l.events {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
			appended[i+1] = time.Now()
			if _, err := relay.Append(e); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	lags := make([]time.Duration, 0, len(l.events))
	next := int64(1)
	for deadline := time.Now().Add(10 * time.Minute); next <= int64(len(l.events)); time.Sleep(5 * time.Millisecond) {
		var fs firehoseState
		if err := call(p.base, "GET", "/admin/firehose", &fs); err != nil {
			return nil, err
		}
		now := time.Now()
		for ; next <= fs.Cursor && next <= int64(len(l.events)); next++ {
			lags = append(lags, now.Sub(appended[next]))
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lag run did not finish (log: %s)", p.log)
		}
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	slices.Sort(lags)
	return lags, nil
}

var streamProfile = flag.String("stream-profile", "", "stream benchmark: save CPU and allocation profiles of colindex, 3 s from its start, in each first-round run into this directory")

// profileStream starts saving 3 s of colindex's CPU and allocation profiles, if asked and not
// done yet for this run's name; the returned func waits for them.
func (b *bench) profileStream(base, name string) func() error {
	if *streamProfile == "" || b.profiled[name] {
		return func() error { return nil }
	}
	if b.profiled == nil {
		b.profiled = map[string]bool{}
	}
	b.profiled[name] = true
	file := strings.NewReplacer(" ", "-", ",", "").Replace(name)
	done := make(chan error, 2)
	for _, kind := range []string{"profile", "allocs"} {
		go func() { done <- saveDebug(base, kind, filepath.Join(*streamProfile, file+"."+kind)) }()
	}
	return func() error { return errors.Join(<-done, <-done) }
}

var streamRounds = flag.Int("stream-rounds", 3, "stream benchmark: alternating runs of each compared stream (the median is reported)")

// streamRound is one of the alternating rounds of compared runs.
type streamRound struct{ ours, deletes, peer, during streamResult }

// pairedMedian is the median over rounds of f (a comparison of two runs of one round), and
// a description: the median, then each round's value, in format.
func pairedMedian(rounds []streamRound, f func(streamRound) float64, format string) (float64, string) {
	var vals []string
	var xs []float64
	for _, rd := range rounds {
		x := f(rd)
		xs = append(xs, x)
		vals = append(vals, fmt.Sprintf(format, x))
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	m := sorted[(len(sorted)-1)/2]
	return m, fmt.Sprintf(format+", the median of rounds %s", m, strings.Join(vals, " / "))
}

// medianRun is the run with the median rate (the lower middle one of an even count).
func medianRun(runs []streamResult) streamResult {
	if len(runs) == 0 {
		return streamResult{}
	}
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b streamResult) int { return cmp.Compare(a.perSec(), b.perSec()) })
	return runs[(len(runs)-1)/2]
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// streamReport runs the stream scenarios and prints their table and targets.
func (b *bench) streamReport(ctx context.Context) error {
	n := b.o.streamCommits
	log.Printf("stream: generating %d signed #commit frames", n)
	full, err := generateStream(max(n/20, 100), n, 50, 0)
	if err != nil {
		return err
	}
	log.Printf("stream: generating %d frames, 1 in 10 a record delete", n)
	mixed, err := generateStream(max(n/20, 100), n, 50, 10)
	if err != nil {
		return err
	}
	// The compared runs alternate, *streamRounds times: on a shared VM one run can be 20%
	// off, and the machine drifts over minutes. Each table row is its median run, and each
	// target compares runs of the same round and reports the median of those ratios.
	backfillData := benchrelay.NewDataset(benchrelay.Spec{Collections: 200, Pairs: 1_000_000, LargestShare: 0.3, Prefix: "com.bench"})
	var rounds []streamRound
	for range max(*streamRounds, 1) {
		var rd streamRound
		if rd.ours, err = b.streamColindex(ctx, full, nil); err != nil {
			return err
		}
		if rd.deletes, err = b.streamColindex(ctx, mixed, nil); err != nil {
			return err
		}
		if b.o.collectiondir != "" {
			if rd.peer, err = b.streamCollectiondir(nil, full); err != nil {
				return err
			}
		}
		if rd.during, err = b.streamColindex(ctx, full, backfillData); err != nil {
			return err
		}
		rounds = append(rounds, rd)
	}
	pick := func(f func(streamRound) streamResult) []streamResult {
		var out []streamResult
		for _, rd := range rounds {
			out = append(out, f(rd))
		}
		return out
	}
	ours := medianRun(pick(func(rd streamRound) streamResult { return rd.ours }))
	withDeletes := medianRun(pick(func(rd streamRound) streamResult { return rd.deletes }))
	peer := medianRun(pick(func(rd streamRound) streamResult { return rd.peer }))
	during := medianRun(pick(func(rd streamRound) streamResult { return rd.during }))
	log.Printf("stream: generating the live-network shape: %d commits by accounts that already have each pair", n)
	warm, live, err := generateWarmStream(max(n/20, 100), n, 50)
	if err != nil {
		return err
	}
	oursLive, err := b.streamColindexAfter(ctx, warm, live, nil)
	if err != nil {
		return err
	}
	var peerLive streamResult
	if b.o.collectiondir != "" {
		if peerLive, err = b.streamCollectiondir(warm, live); err != nil {
			return err
		}
	}
	const rate = 2000
	steady, err := generateStream(500, 30*rate, 50, 0)
	if err != nil {
		return err
	}
	lags, err := b.streamLag(ctx, steady, rate)
	if err != nil {
		return err
	}

	fmt.Printf("\nFirehose: %d real sync-1.1 #commit frames (one create each; %d accounts, 50 collections), "+
		"followed from the first event, relay and consumer on this machine. Every row but the live-network "+
		"shape's is the median of %d alternating rounds.\n\n", n, max(n/20, 100), max(*streamRounds, 1))
	fmt.Println("| consumer | wall | events/s | CPU per event | then durable | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range []streamResult{ours, withDeletes, peer, oursLive, peerLive, during} {
		if r.name != "" {
			durable := "—" // collectiondir does not sync
			if r.synced {
				durable = r.durableAfter.Round(time.Millisecond).String()
			}
			fmt.Printf("| %s | %s | %.0f | %.1f µs | %s | %d MB |\n", r.name, r.wall.Round(time.Millisecond), r.perSec(),
				float64(r.cpuPerEvent().Nanoseconds())/1000, durable, r.rss>>20)
		}
	}
	fmt.Println("\nWall: from the first event applied to the last (colindex: events_total; collectiondir: its " +
		"store's adds). Then durable: how long after that colindex's durable cursor (WAL synced, saved in " +
		"Postgres every 250 ms) passed the last event.")
	fmt.Printf("\nLive stream at %d events/s for %d s: lag from the event's arrival at the relay to colindex's durable "+
		"cursor: p50 %s, p99 %s, max %s.\n\n", rate, len(steady.events)/rate, percentile(lags, 0.5).Round(time.Millisecond),
		percentile(lags, 0.99).Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	fmt.Println("| target | measured | holds |")
	fmt.Println("|---|---|---|")
	target := func(name, measured string, ok bool) {
		fmt.Printf("| %s | %s | %s |\n", name, measured, map[bool]string{true: "yes", false: "**no**"}[ok])
	}
	target("ingest ≥ 20,000 events/s with the cursor durable every 250 ms", fmt.Sprintf("%.0f events/s", ours.perSec()), ours.perSec() >= 20000)
	for _, pair := range [][2]streamResult{{ours, peer}, {oursLive, peerLive}} {
		us, them := pair[0], pair[1]
		if them.name == "" {
			continue
		}
		shape := fmt.Sprintf("random creates (%d%% add a pair)", 100*full.newPairs/max(full.adds, 1))
		if us.name == oursLive.name {
			shape = "live-network shape (no commit adds a pair)"
		}
		x := us.perSec() / them.perSec()
		measured := fmt.Sprintf("%.1f × (%.0f vs %.0f events/s)", x, us.perSec(), them.perSec())
		if us.name == ours.name {
			x, measured = pairedMedian(rounds, func(rd streamRound) float64 { return rd.ours.perSec() / rd.peer.perSec() }, "%.2f ×")
		}
		target("≥ 2 × indigo collectiondir, "+shape, measured, x >= 2)
		c := float64(them.cpuPerEvent()) / float64(us.cpuPerEvent())
		target("≤ ½ collectiondir's CPU per event, "+shape, fmt.Sprintf("%.1f × less (%.1f vs %.1f µs)", c,
			float64(us.cpuPerEvent().Nanoseconds())/1000, float64(them.cpuPerEvent().Nanoseconds())/1000), c >= 2)
	}
	change, measured := pairedMedian(rounds, func(rd streamRound) float64 { return 100 * (rd.during.perSec()/rd.ours.perSec() - 1) }, "%+.0f%%")
	target("within 25% while a zero-latency backfill runs", measured, change >= -25)
	decided := 1 - float64(withDeletes.undecided)/float64(mixed.deletes)
	target("≥ 99% of record deletes decided from the proof", fmt.Sprintf("%.2f%% of %d deletes (%d pairs removed, %d undecided)",
		decided*100, mixed.deletes, withDeletes.pairsRemoved, withDeletes.undecided), decided >= 0.99)
	change, measured = pairedMedian(rounds, func(rd streamRound) float64 { return 100 * (rd.deletes.perSec()/rd.ours.perSec() - 1) }, "%+.0f%%")
	target("deciding costs ≤ 15% of the ingest rate", measured, change >= -15)
	p99 := percentile(lags, 0.99)
	target(fmt.Sprintf("lag p99 < 1 s at %d events/s", rate), p99.Round(time.Millisecond).String(), p99 < time.Second)
	return nil
}
