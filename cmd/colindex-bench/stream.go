package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bluesky-social/indigo/events"

	"github.com/colindex/colindex/internal/benchrelay"
	"github.com/colindex/colindex/internal/fakerelay"
)

// The stream benchmark: a synthetic relay serving real sync-1.1 #commit frames (signed
// commits with their MST blocks, built by internal/fakerelay). A real colindex serve, then
// indigo's collectiondir, each follow the same log from its first event as fast as they can;
// then colindex again while a zero-latency backfill runs; then a live stream at a steady
// rate, for the lag from an event's arrival at the relay to its durable cursor.

// streamResult is one consumer catching up with the whole log.
type streamResult struct {
	name   string
	wall   time.Duration
	events int
	rss    int64
	cpu    time.Duration // the consumer's CPU time (user and system) from its first event to the end
	// synced: the consumer keeps a durable cursor (colindex), and durableAfter is how long
	// after its last event was applied that cursor passed it (at most one flush interval);
	// not part of wall.
	synced       bool
	durableAfter time.Duration
	// Of the record deletes: pairs the proof removed, and deletes it could not settle.
	pairsRemoved, undecided int64
}

func (r streamResult) perSec() float64 { return float64(r.events) / r.wall.Seconds() }

// cpuPerEvent is the consumer's CPU time per event: what it costs whatever else shares the
// cores (the relay, the other consumer's leftovers), so the steadier comparison.
func (r streamResult) cpuPerEvent() time.Duration { return r.cpu / time.Duration(max(r.events, 1)) }

// cpuTime is a process's CPU time so far, user and system, from /proc (clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// relayWith starts a fake relay holding events, replaying them to any consumer that connects
// without a cursor (as a consumer catching up from the start would get them).
func relayWith(evts []*events.XRPCStreamEvent) (*fakerelay.Relay, error) {
	r := fakerelay.Start()
	r.ReplayFromStart(true)
	for _, e := range evts {
		if _, err := r.Append(e); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// colindexProcess is a colindex serve on its own database and index.
type colindexProcess struct {
	base string
	cmd  *exec.Cmd
	log  string
	stop func()
}

// startColindex starts colindex serve with the given extra environment.
func (b *bench) startColindex(ctx context.Context, name string, env ...string) (*colindexProcess, error) {
	st, err := b.create(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		b.drop(ctx, st)
		return nil, err
	}
	logPath := filepath.Join(b.o.workDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		b.drop(ctx, st)
		return nil, err
	}
	cmd := exec.Command(b.o.colindex, "serve")
	cmd.Env = append(append(os.Environ(),
		"DATABASE_URL="+st.dbURL,
		"RELAY_ADMIN_PASSWORD="+benchPassword,
		"COLINDEX_LISTEN="+addr,
		"COLINDEX_INDEX_DIR="+st.index,
		"COLINDEX_LEXICON_LIST_URL=",
		"COLINDEX_FIREHOSE_URL=",
	), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		b.drop(ctx, st)
		return nil, fmt.Errorf("start colindex: %w", err)
	}
	p := &colindexProcess{base: "http://" + addr, cmd: cmd, log: logPath, stop: func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logFile.Close()
		b.drop(ctx, st)
	}}
	if err := waitHealthy(p.base); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return p, nil
}

// firehoseState is the part of GET /admin/firehose the benchmark reads.
type firehoseState struct {
	Cursor            int64 `json:"cursor"`
	EventsTotal       int64 `json:"events_total"`
	PairsRemoved      int64 `json:"pairs_removed"`
	RemovalsUndecided int64 `json:"removals_undecided"`
}

// catchUp waits until colindex has applied all total events of the relay's log and its
// durable cursor has reached last, the log's last seq. It returns the time and CPU from its
// first event applied (or, with from > 0, from its from-th) to its last, how long the durable
// cursor took to follow, and the follower's state then.
//
// The clock stops at the last event applied (events_total counts a batch's events when the
// batch is applied), as collectiondir's stops when its store has taken every add. The durable
// cursor moves only at the flusher's ticks, every 250 ms: stopping the clock there rounded
// every colindex wall up to the next tick, a step of 8–10% of a 2.5–3 s run, and ratios of
// two such walls to ratios of tick counts (10 against 12 ticks read −17% in every round).
func (p *colindexProcess) catchUp(from, total, last int64) (wall, cpu, durableAfter time.Duration, fs firehoseState, err error) {
	var first, applied time.Time
	var cpu0 time.Duration
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if err := call(p.base, "GET", "/admin/firehose", &fs); err != nil {
			return 0, 0, 0, fs, err
		}
		if first.IsZero() && fs.EventsTotal > from {
			first, cpu0 = time.Now(), cpuTime(p.cmd.Process.Pid)
		}
		if applied.IsZero() && fs.EventsTotal >= total && !first.IsZero() {
			applied = time.Now()
			wall, cpu = applied.Sub(first), cpuTime(p.cmd.Process.Pid)-cpu0
		}
		if !applied.IsZero() && fs.Cursor >= last {
			return wall, cpu, time.Since(applied), fs, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, fs, fmt.Errorf("colindex did not catch up: %d of %d events applied, cursor %d of %d (log: %s)",
				fs.EventsTotal, total, fs.Cursor, last, p.log)
		}
	}
}

// streamColindex follows the whole log with colindex; with backfill set, a zero-latency
// backfill of that data set runs at the same time.
func (b *bench) streamColindex(ctx context.Context, l *streamLog, backfill *benchrelay.Dataset) (streamResult, error) {
	return b.streamColindexAfter(ctx, nil, l, backfill)
}

// streamColindexAfter is streamColindex with warm's events before l's, unmeasured.
func (b *bench) streamColindexAfter(ctx context.Context, warm, l *streamLog, backfill *benchrelay.Dataset) (streamResult, error) {
	var evts []*events.XRPCStreamEvent
	if warm != nil {
		evts = append(evts, warm.events...)
	}
	relay, err := relayWith(append(evts, l.events...))
	if err != nil {
		return streamResult{}, err
	}
	defer relay.Close()
	name, env := "colindex", []string{"COLINDEX_FIREHOSE_URL=" + relay.URL()}
	if backfill != nil {
		source := benchrelay.New(backfill, benchrelay.Latency{})
		defer source.Close()
		name = "colindex during a zero-latency backfill"
		env = append(env, "COLINDEX_DEFAULT_SOURCE="+source.URL, "COLINDEX_LEXICON_LIST_URL="+source.URL+"/llms.txt",
			"COLINDEX_SOURCE_RPS=0", "COLINDEX_PAGE_PAUSE=0s", "COLINDEX_PAGE_LIMIT=10000")
	}
	p, err := b.startColindex(ctx, "stream-"+name[:8], env...)
	if err != nil {
		return streamResult{}, err
	}
	defer p.stop()
	if backfill != nil {
		if err := call(p.base, "POST", "/admin/backfill-collections", nil); err != nil {
			return streamResult{}, err
		}
	}
	var from int64
	if warm != nil {
		from, name = int64(len(warm.events)), "colindex, live-network shape"
	}
	if l.deletes > 0 {
		name = fmt.Sprintf("colindex, 1 commit in %d a record delete", len(l.events)/l.deletes)
	}
	profiled := b.profileStream(p.base, name)
	wall, cpu, durableAfter, fs, err := p.catchUp(from, int64(len(evts)+len(l.events)), relay.LastSeq())
	if err != nil {
		return streamResult{}, err
	}
	if err := profiled(); err != nil {
		log.Printf("stream: profile of %s: %v", name, err)
	}
	res := streamResult{name: name, wall: wall, cpu: cpu, synced: true, durableAfter: durableAfter, events: len(l.events),
		pairsRemoved: fs.PairsRemoved, undecided: fs.RemovalsUndecided}
	res.rss, _ = peakRSS(p.cmd.Process.Pid)
	if backfill != nil {
		var st struct {
			Running bool `json:"running"`
		}
		_ = call(p.base, "GET", "/admin/backfill-collections", &st)
		if !st.Running {
			log.Printf("stream: warning: the backfill ended before the stream caught up; the overlap was partial")
		}
	}
	log.Printf("stream: %s: %d events in %s, %.0f events/s, %s CPU/event, durable %s later, RSS %d MB", name, res.events,
		wall.Round(time.Millisecond), res.perSec(), res.cpuPerEvent(), durableAfter.Round(time.Millisecond), res.rss>>20)
	return res, nil
}

// streamCollectiondir follows the whole log with indigo's collectiondir serve --upstream,
// until its pebble store has taken every add (new and duplicate writes).
func (b *bench) streamCollectiondir(warm, l *streamLog) (streamResult, error) {
	var evts []*events.XRPCStreamEvent
	var warmAdds int
	name := "indigo collectiondir"
	if warm != nil {
		evts, warmAdds = append(evts, warm.events...), warm.adds
		name = "indigo collectiondir, live-network shape"
	}
	relay, err := relayWith(append(evts, l.events...))
	if err != nil {
		return streamResult{}, err
	}
	defer relay.Close()
	dir, err := os.MkdirTemp(b.o.workDir, "collectiondir-")
	if err != nil {
		return streamResult{}, err
	}
	defer os.RemoveAll(dir)
	apiAddr, err := freeAddr()
	if err != nil {
		return streamResult{}, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return streamResult{}, err
	}
	logPath := filepath.Join(b.o.workDir, "stream-collectiondir.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return streamResult{}, err
	}
	defer logFile.Close()
	cmd := exec.Command(b.o.collectiondir, "serve", "--pebble", filepath.Join(dir, "pebble"),
		"--dau-directory", filepath.Join(dir, "dau"), "--api-listen", apiAddr,
		"--metrics-listen", metricsAddr, "--upstream", relay.URL())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return streamResult{}, fmt.Errorf("start collectiondir: %w", err)
	}
	defer stopWithin(cmd, 10*time.Second) // collectiondir can hang on SIGTERM with the upstream gone
	var first time.Time
	var cpu0 time.Duration
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if m, err := scrape("http://" + metricsAddr); err == nil {
			done := int(m.value("collectiondir_pebble_new_total") + m.value("collectiondir_pebble_dup_total"))
			if first.IsZero() && m.value("collectiondir_firehose_received_total") > 0 && (warm == nil || done >= warmAdds) {
				first, cpu0 = time.Now(), cpuTime(cmd.Process.Pid)
			}
			if done >= warmAdds+l.adds && !first.IsZero() {
				break
			}
		}
		if time.Now().After(deadline) {
			return streamResult{}, fmt.Errorf("collectiondir did not catch up (log: %s)", logPath)
		}
	}
	res := streamResult{name: name, wall: time.Since(first), cpu: cpuTime(cmd.Process.Pid) - cpu0, events: len(l.events)}
	res.rss, _ = peakRSS(cmd.Process.Pid)
	log.Printf("stream: collectiondir: %d events in %s, %.0f events/s, %s CPU/event, RSS %d MB", res.events, res.wall.Round(time.Millisecond), res.perSec(), res.cpuPerEvent(), res.rss>>20)
	return res, nil
}

// stopWithin sends SIGTERM and waits, then SIGKILL after grace.
func stopWithin(cmd *exec.Cmd, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}
