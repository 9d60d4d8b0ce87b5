package main

import (
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/events"

	"github.com/colindex/colindex/internal/benchrelay"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/rocksindex"
)

// The rehearsal's measures beyond the backfill: reads while the live stream ingests, and what
// the index costs on disk by column family, before and after a compaction.

// rehearsalStreamCommits is the stream the restarted serve catches up on while reads are
// measured: one-op commits, a tenth of them deletes decided from their proofs.
const rehearsalStreamCommits = 200_000

// After the catch-up, the relay goes on at a live rate, twice bsky.network's usual thousand
// events a second, for liveSeconds while reads are measured again: what a reader sees on a
// current follower.
const (
	liveRate    = 2000
	liveSeconds = 20
)

var rehearsalProfile = flag.String("rehearsal-profile", "", "rehearsal: save a CPU profile and an execution trace of serve, taken while reads run during the stream's catch-up, into this directory")

// streamedReads are read latencies measured while the follower was catching up.
type streamedReads struct {
	largest, tail []time.Duration
	events        int64 // applied during the reads
	caughtUp      bool  // the stream had caught up before the reads ended (they then ran partly without it)
}

// readsDuringStream pages the largest and a tail collection alternately, a page of 1,000 at a
// time, for as long as the follower is catching up on stream (at least 100 reads of each).
// With -rehearsal-profile, a CPU profile and an execution trace of serve are saved from the
// first reads (the trace shows where a slow read waited).
func readsDuringStream(base, largest, tail string, stream *streamLog) (streamedReads, error) {
	profiled := make(chan error, 2)
	if *rehearsalProfile != "" {
		for _, kind := range []string{"profile", "trace"} {
			go func() {
				profiled <- saveDebug(base, kind, filepath.Join(*rehearsalProfile, "rehearsal-stream-reads."+kind))
			}()
		}
	}
	last := int64(len(stream.events))
	out, err := readAlternately(base, largest, tail, func(fs firehoseState, i int, out *streamedReads) bool {
		out.caughtUp = out.caughtUp || fs.Cursor >= last
		return (out.caughtUp && i >= 99) || i >= 5000
	})
	if err != nil {
		return out, err
	}
	if *rehearsalProfile != "" {
		for range 2 {
			if err := <-profiled; err != nil {
				return out, err
			}
		}
	}
	slices.Sort(out.largest)
	slices.Sort(out.tail)
	log.Printf("rehearsal: %d reads of each while the stream applied %d events (caught up: %v)", len(out.largest), out.events, out.caughtUp)
	return out, nil
}

// readsDuringLiveStream appends live to the relay at liveRate events a second and pages the
// largest and a tail collection alternately until every event is applied.
func readsDuringLiveStream(base, largest, tail string, relay *fakerelay.Relay, live []*events.XRPCStreamEvent) (streamedReads, error) {
	lastSeq := relay.LastSeq() + int64(len(live))
	appended := make(chan error, 1)
	go func() {
		start := time.Now()
		for i, e := range live {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / liveRate)))
			if _, err := relay.Append(e); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	// Bounded, so a relay that stopped appending ends the reads and its error is returned.
	out, err := readAlternately(base, largest, tail, func(fs firehoseState, i int, _ *streamedReads) bool {
		return fs.Cursor >= lastSeq || i >= 50_000
	})
	if err != nil {
		return out, err
	}
	if err := <-appended; err != nil {
		return out, err
	}
	out.caughtUp = true
	slices.Sort(out.largest)
	slices.Sort(out.tail)
	log.Printf("rehearsal: %d reads of each while the stream applied %d events at %d/s", len(out.largest), out.events, liveRate)
	return out, nil
}

// readAlternately pages the largest and a tail collection alternately, a page of 1,000 at a
// time, and every 20 rounds asks the follower's state and stops when done says so.
func readAlternately(base, largest, tail string, done func(fs firehoseState, round int, out *streamedReads) bool) (streamedReads, error) {
	var out streamedReads
	var first firehoseState
	if err := call(base, "GET", "/admin/firehose", &first); err != nil {
		return out, err
	}
	cursors := map[string]string{}
	for i := 0; ; i++ {
		for _, c := range []string{largest, tail} {
			t := time.Now()
			next, err := readPage(base, c, cursors[c], 1000)
			if err != nil {
				return out, err
			}
			if c == largest {
				out.largest = append(out.largest, time.Since(t))
			} else {
				out.tail = append(out.tail, time.Since(t))
			}
			cursors[c] = next
		}
		if i%20 != 19 {
			continue
		}
		var fs firehoseState
		if err := call(base, "GET", "/admin/firehose", &fs); err != nil {
			return out, err
		}
		out.events = fs.EventsTotal - first.EventsTotal
		if done(fs, i, &out) {
			return out, nil
		}
	}
}

func (r streamedReads) print(largest, tail string, tailSize int, while string) {
	fmt.Printf("| listReposByCollection, limit 1000, largest collection (%s), %s (%d events applied during %d reads) | p50 %s, p99 %s |\n",
		largest, while, r.events, len(r.largest), percentile(r.largest, 0.5).Round(10*time.Microsecond), percentile(r.largest, 0.99).Round(10*time.Microsecond))
	fmt.Printf("| listReposByCollection, limit 1000, tail collection (%s, %d DIDs), %s | p50 %s, p99 %s |\n",
		tail, tailSize, while, percentile(r.tail, 0.5).Round(10*time.Microsecond), percentile(r.tail, 0.99).Round(10*time.Microsecond))
}

// familySizes is the index's disk use by column family, before and after a compaction.
type familySizes struct {
	before, after []rocksindex.FamilySize
	compactTook   time.Duration
}

// diskByFamily opens the index (its serve stopped), reads each family's size, compacts it
// and reads them again.
func diskByFamily(dir string) (familySizes, error) {
	ix, err := rocksindex.Open(dir)
	if err != nil {
		return familySizes{}, err
	}
	defer ix.Close()
	out := familySizes{before: ix.DiskUsage()}
	log.Printf("rehearsal: compacting the index")
	t := time.Now()
	if err := ix.Compact(); err != nil {
		return out, err
	}
	out.compactTook = time.Since(t)
	out.after = ix.DiskUsage()
	return out, nil
}

// print reports each family's bytes per pair, and against the raw bytes of its keys (what
// RocksDB's block encoding and compression buy).
func (f familySizes) print(d *benchrelay.Dataset) {
	pairs := float64(d.Pairs())
	// Raw key bytes: an rbc and a cbr key per pair, each the collection, a separator and the DID.
	var raw float64
	for i, name := range d.Names {
		raw += float64(d.Sizes[i]) * float64(len(name)+1+len(d.DID(i, 0)))
	}
	var before, after uint64
	for i, fs := range f.after {
		before += f.before[i].Bytes
		after += fs.Bytes
		if fs.Family != "rbc" && fs.Family != "cbr" {
			continue
		}
		fmt.Printf("| %s family after compaction | %d MB, %.1f bytes per pair (%.0f%% of its raw keys, %.1f bytes per pair raw) |\n",
			fs.Family, fs.Bytes>>20, float64(fs.Bytes)/pairs, 100*float64(fs.Bytes)/raw, raw/pairs)
	}
	fmt.Printf("| index on disk, every family | %d MB (%.1f bytes per pair) before compaction, %d MB (%.1f bytes per pair) after; compaction took %s |\n",
		before>>20, float64(before)/pairs, after>>20, float64(after)/pairs, f.compactTook.Round(time.Second))
}
