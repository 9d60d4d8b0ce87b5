package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"math/rand/v2"
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

// streamLog is a generated stream: every event, in seq order, and what it adds.
type streamLog struct {
	events  []*events.XRPCStreamEvent
	adds    int // create and update ops: what collectiondir counts as pebble writes
	deletes int
	// newPairs is how many of the adds put a pair the index does not hold yet.
	newPairs int
}

// generateStream builds commits of one op each, from accounts over collections of
// network-like popularity (a few collections take most commits). With deleteEvery > 0, every
// deleteEvery-th commit deletes one of the account's records instead (often its last of
// that collection), so the proof of removal is exercised.
func generateStream(accounts, commits, collections, deleteEvery int) (*streamLog, error) {
	names := make([]string, collections)
	for i := range names {
		names[i] = fmt.Sprintf("com.stream.c%04d", i)
	}
	accts := make([]*fakerelay.Account, accounts)
	owned := make([][]fakerelay.Op, accounts) // each account's live records
	for i := range accts {
		a, err := fakerelay.NewAccount(fmt.Sprintf("did:plc:%024d", i))
		if err != nil {
			return nil, err
		}
		accts[i] = a
	}
	rng := rand.New(rand.NewPCG(1, 2))
	out := &streamLog{}
	type pair struct{ acct, coll string }
	held := map[pair]bool{}
	for i := range commits {
		n := rng.IntN(len(accts))
		op := fakerelay.Create(names[min(int(float64(collections)*rng.Float64()*rng.Float64()), collections-1)], fmt.Sprintf("r%09d", i))
		if deleteEvery > 0 && i%deleteEvery == deleteEvery-1 && len(owned[n]) > 0 {
			j := rng.IntN(len(owned[n]))
			op = fakerelay.Delete(owned[n][j].Collection, owned[n][j].Rkey)
			owned[n] = append(owned[n][:j], owned[n][j+1:]...)
			out.deletes++
		} else {
			owned[n] = append(owned[n], op)
			out.adds++
			if p := (pair{accts[n].DID, op.Collection}); !held[p] {
				held[p] = true
				out.newPairs++
			}
		}
		evt, err := accts[n].Commit(op)
		if err != nil {
			return nil, err
		}
		out.events = append(out.events, &events.XRPCStreamEvent{RepoCommit: evt})
	}
	return out, nil
}

// generateWarmStream is the live network's shape: commits (one create each, drawn as
// generateStream draws them) by accounts that already have a record in every collection they
// write to. warm creates those first records, one commit per pair; live is the measured part,
// in which no commit adds a pair. On bsky.network nearly every commit is like that: an
// account posting, liking or following again.
func generateWarmStream(accounts, commits, collections int) (warm, live *streamLog, err error) {
	names := make([]string, collections)
	for i := range names {
		names[i] = fmt.Sprintf("com.stream.c%04d", i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type draw struct{ acct, coll int }
	draws := make([]draw, commits)
	for i := range draws {
		draws[i] = draw{rng.IntN(accounts), min(int(float64(collections)*rng.Float64()*rng.Float64()), collections-1)}
	}
	accts := make([]*fakerelay.Account, accounts)
	for i := range accts {
		if accts[i], err = fakerelay.NewAccount(fmt.Sprintf("did:plc:%024d", i)); err != nil {
			return nil, nil, err
		}
	}
	warm, live = &streamLog{}, &streamLog{}
	seen := map[draw]bool{}
	for i, d := range draws {
		if seen[d] {
			continue
		}
		seen[d] = true
		evt, err := accts[d.acct].Commit(fakerelay.Create(names[d.coll], fmt.Sprintf("w%09d", i)))
		if err != nil {
			return nil, nil, err
		}
		warm.events = append(warm.events, &events.XRPCStreamEvent{RepoCommit: evt})
		warm.adds++
	}
	for i, d := range draws {
		evt, err := accts[d.acct].Commit(fakerelay.Create(names[d.coll], fmt.Sprintf("r%09d", i)))
		if err != nil {
			return nil, nil, err
		}
		live.events = append(live.events, &events.XRPCStreamEvent{RepoCommit: evt})
		live.adds++
	}
	return warm, live, nil
}

// streamResult is one consumer catching up with the whole log.
type streamResult struct {
	name   string
	wall   time.Duration
	events int
	rss    int64
	cpu    time.Duration // the consumer's CPU time (user and system) from its first event to the end
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

// catchUp waits until colindex's durable cursor reaches last, and returns the time and CPU
// from its first event (or, with from > 0, from its durable cursor reaching from) to then, and
// the follower's state then.
func (p *colindexProcess) catchUp(from, last int64) (time.Duration, time.Duration, firehoseState, error) {
	var first time.Time
	var cpu0 time.Duration
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var fs firehoseState
		if err := call(p.base, "GET", "/admin/firehose", &fs); err != nil {
			return 0, 0, fs, err
		}
		if first.IsZero() && fs.EventsTotal > 0 && (from == 0 || fs.Cursor >= from) {
			first, cpu0 = time.Now(), cpuTime(p.cmd.Process.Pid)
		}
		if fs.Cursor >= last && !first.IsZero() {
			return time.Since(first), cpuTime(p.cmd.Process.Pid) - cpu0, fs, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fs, fmt.Errorf("colindex did not catch up: cursor %d of %d (log: %s)", fs.Cursor, last, p.log)
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
	wall, cpu, fs, err := p.catchUp(from, relay.LastSeq())
	if err != nil {
		return streamResult{}, err
	}
	if err := profiled(); err != nil {
		log.Printf("stream: profile of %s: %v", name, err)
	}
	res := streamResult{name: name, wall: wall, cpu: cpu, events: len(l.events), pairsRemoved: fs.PairsRemoved, undecided: fs.RemovalsUndecided}
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
	log.Printf("stream: %s: %d events in %s, %.0f events/s, %s CPU/event, RSS %d MB", name, res.events, wall.Round(time.Millisecond), res.perSec(), res.cpuPerEvent(), res.rss>>20)
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
