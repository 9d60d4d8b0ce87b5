package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
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
		}
		evt, err := accts[n].Commit(op)
		if err != nil {
			return nil, err
		}
		out.events = append(out.events, &events.XRPCStreamEvent{RepoCommit: evt})
	}
	return out, nil
}

// streamResult is one consumer catching up with the whole log.
type streamResult struct {
	name   string
	wall   time.Duration
	events int
	rss    int64
	// Of the record deletes: pairs the proof removed, and deletes it could not settle.
	pairsRemoved, undecided int64
}

func (r streamResult) perSec() float64 { return float64(r.events) / r.wall.Seconds() }

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

// catchUp waits until colindex's durable cursor reaches last, and returns the time from its
// first event to then, and the follower's state then.
func (p *colindexProcess) catchUp(last int64) (time.Duration, firehoseState, error) {
	var first time.Time
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var fs firehoseState
		if err := call(p.base, "GET", "/admin/firehose", &fs); err != nil {
			return 0, fs, err
		}
		if first.IsZero() && fs.EventsTotal > 0 {
			first = time.Now()
		}
		if fs.Cursor >= last {
			return time.Since(first), fs, nil
		}
		if time.Now().After(deadline) {
			return 0, fs, fmt.Errorf("colindex did not catch up: cursor %d of %d (log: %s)", fs.Cursor, last, p.log)
		}
	}
}

// streamColindex follows the whole log with colindex; with backfill set, a zero-latency
// backfill of that data set runs at the same time.
func (b *bench) streamColindex(ctx context.Context, l *streamLog, backfill *benchrelay.Dataset) (streamResult, error) {
	relay, err := relayWith(l.events)
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
	wall, fs, err := p.catchUp(relay.LastSeq())
	if err != nil {
		return streamResult{}, err
	}
	if l.deletes > 0 {
		name = fmt.Sprintf("colindex, 1 commit in %d a record delete", len(l.events)/l.deletes)
	}
	res := streamResult{name: name, wall: wall, events: len(l.events), pairsRemoved: fs.PairsRemoved, undecided: fs.RemovalsUndecided}
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
	log.Printf("stream: %s: %d events in %s, %.0f events/s, RSS %d MB", name, res.events, wall.Round(time.Millisecond), res.perSec(), res.rss>>20)
	return res, nil
}

// streamCollectiondir follows the whole log with indigo's collectiondir serve --upstream,
// until its pebble store has taken every add (new and duplicate writes).
func (b *bench) streamCollectiondir(l *streamLog) (streamResult, error) {
	relay, err := relayWith(l.events)
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
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if m, err := scrape("http://" + metricsAddr); err == nil {
			if first.IsZero() && m.value("collectiondir_firehose_received_total") > 0 {
				first = time.Now()
			}
			if int(m.value("collectiondir_pebble_new_total")+m.value("collectiondir_pebble_dup_total")) >= l.adds {
				break
			}
		}
		if time.Now().After(deadline) {
			return streamResult{}, fmt.Errorf("collectiondir did not catch up (log: %s)", logPath)
		}
	}
	res := streamResult{name: "indigo collectiondir", wall: time.Since(first), events: len(l.events)}
	res.rss, _ = peakRSS(cmd.Process.Pid)
	log.Printf("stream: collectiondir: %d events in %s, %.0f events/s, RSS %d MB", res.events, res.wall.Round(time.Millisecond), res.perSec(), res.rss>>20)
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
