package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/benchrelay"
)

const benchPassword = "colindex-bench-admin-password"

type settings struct {
	concurrency int
	rps         float64
	pause       time.Duration
	limit       int
}

func (s settings) String() string {
	rps := "no cap"
	if s.rps > 0 {
		rps = fmt.Sprintf("cap %g/s", s.rps)
	}
	return fmt.Sprintf("concurrency %d, %s, pause %s, limit %d", s.concurrency, rps, s.pause, s.limit)
}

type scenario struct {
	name     string
	data     *benchrelay.Dataset
	latency  benchrelay.Latency
	settings settings
	only     []string // page just these collections
	keep     bool     // keep the database and index for a later scenario
	reuse    *state   // run on a kept database and index
}

// state is a scenario's database and index.
type state struct {
	db, dbURL, index string
}

type result struct {
	name          string
	wall          time.Duration
	dids          int64
	pages         int64
	overheadP50   time.Duration
	overheadP99   time.Duration
	requests      int
	peakPerSecond int
	peakRSS       int64         // bytes
	cpu           time.Duration // colindex's CPU time (user+system) from the start request to the end
	state         *state
}

func (r result) didsPerSec() float64  { return float64(r.dids) / r.wall.Seconds() }
func (r result) pagesPerSec() float64 { return float64(r.pages) / r.wall.Seconds() }

type bench struct {
	o        options
	profiled map[string]bool // stream runs profiled already (-stream-profile)
}

// backfill runs one scenario: a fresh (or kept) database and index, a colindex serve process
// and a relay, one POST, and polling until every collection is complete.
func (b *bench) backfill(ctx context.Context, sc scenario) (result, error) {
	log.Printf("%s: %s", sc.name, sc.settings)
	st := sc.reuse
	if st == nil {
		var err error
		if st, err = b.create(ctx); err != nil {
			return result{}, err
		}
	}
	if !sc.keep && sc.reuse == nil {
		defer b.drop(ctx, st)
	}
	relay := benchrelay.New(sc.data, sc.latency)
	defer relay.Close()

	lexicons := relay.URL + "/llms.txt"
	if len(sc.only) > 0 {
		lexicons += "?only=" + url.QueryEscape(strings.Join(sc.only, ","))
	}
	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	logPath := filepath.Join(b.o.workDir, strings.ReplaceAll(sc.name, " ", "-")+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return result{}, err
	}
	defer logFile.Close()
	cmd := exec.Command(b.o.colindex, "serve")
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+st.dbURL,
		"RELAY_ADMIN_PASSWORD="+benchPassword,
		"COLINDEX_LISTEN="+addr,
		"COLINDEX_INDEX_DIR="+st.index,
		"COLINDEX_FIREHOSE_URL=", // the backfill alone; the stream has its own scenario
		"COLINDEX_LEXICON_LIST_URL="+lexicons,
		"COLINDEX_DEFAULT_SOURCE="+relay.URL,
		"COLINDEX_CONCURRENCY="+strconv.Itoa(sc.settings.concurrency),
		"COLINDEX_SOURCE_RPS="+strconv.FormatFloat(sc.settings.rps, 'f', -1, 64),
		"COLINDEX_PAGE_PAUSE="+sc.settings.pause.String(),
		"COLINDEX_PAGE_LIMIT="+strconv.Itoa(sc.settings.limit),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return result{}, fmt.Errorf("start colindex: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	base := "http://" + addr
	if err := waitHealthy(base); err != nil {
		return result{}, fmt.Errorf("%w (log: %s)", err, logPath)
	}

	want := len(sc.data.Names)
	if len(sc.only) > 0 {
		want = len(sc.only)
	}
	relay.Stats() // reset
	before, err := scrape(base)
	if err != nil {
		return result{}, err
	}
	cpuBefore, start := procCPU([]int{cmd.Process.Pid})[cmd.Process.Pid], time.Now()
	if err := call(base, http.MethodPost, "/admin/backfill-collections", nil); err != nil {
		return result{}, err
	}
	var last time.Time
	var running []float64 // page workers busy, sampled each poll
	for {
		var st statusBody
		if err := call(base, http.MethodGet, "/admin/backfill-collections", &st); err != nil {
			return result{}, err
		}
		done, lastPage := st.progress(sc.data)
		if done >= want {
			last = lastPage
			break
		}
		if b.o.sampleWorkers {
			if m, err := scrape(base); err == nil {
				running = append(running, m.value(`colindex_river_queue_jobs{queue="backfill_pages",state="running"}`))
			}
		}
		if cmd.ProcessState != nil {
			return result{}, fmt.Errorf("colindex exited (log: %s)", logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cpu := procCPU([]int{cmd.Process.Pid})[cmd.Process.Pid] - cpuBefore
	after, err := scrape(base)
	if err != nil {
		return result{}, err
	}
	// The run itself ends a few seconds after its last page (its watcher polls); a later
	// scenario on the same database must not find it still live.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var live struct {
			Running bool `json:"running"`
		}
		if err := call(base, http.MethodGet, "/admin/backfill-collections", &live); err != nil || !live.Running {
			break
		}
	}
	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	stats := relay.Stats()
	res := result{
		name:          sc.name,
		wall:          last.Sub(start),
		dids:          int64(after.value("colindex_backfill_dids_imported_total") - before.value("colindex_backfill_dids_imported_total")),
		pages:         int64(after.value("colindex_backfill_pages_committed_total") - before.value("colindex_backfill_pages_committed_total")),
		overheadP50:   after.quantile("colindex_backfill_page_overhead_seconds", 0.50),
		overheadP99:   after.quantile("colindex_backfill_page_overhead_seconds", 0.99),
		requests:      stats.Requests,
		peakPerSecond: stats.PeakPerSecond,
		peakRSS:       rss,
		cpu:           cpu,
		state:         st,
	}
	if len(running) > 0 {
		log.Printf("%s: busy page workers per poll: %v", sc.name, running)
	}
	log.Printf("%s: %s, %.0f DIDs/s, %.1f pages/s, %d requests (peak %d/s), RSS %d MB, CPU %s",
		sc.name, res.wall.Round(10*time.Millisecond), res.didsPerSec(), res.pagesPerSec(), res.requests,
		res.peakPerSecond, res.peakRSS>>20, res.cpu.Round(10*time.Millisecond))
	return res, nil
}

// statusBody is the part of the status JSON the benchmark reads.
type statusBody struct {
	Collections []struct {
		Collection string     `json:"collection"`
		Completed  bool       `json:"completed"`
		LastPageAt *time.Time `json:"last_page_at"`
	} `json:"collections"`
}

// progress counts the data set's completed collections and the latest commit among them:
// the wall time ends at the last commit, not at the poll that noticed it.
func (s statusBody) progress(d *benchrelay.Dataset) (int, time.Time) {
	prefix := strings.TrimSuffix(d.Names[0], "c0000")
	done, last := 0, time.Time{}
	for _, c := range s.Collections {
		if !strings.HasPrefix(c.Collection, prefix) || !c.Completed {
			continue
		}
		done++
		if c.LastPageAt != nil && c.LastPageAt.After(last) {
			last = *c.LastPageAt
		}
	}
	return done, last
}

func (b *bench) create(ctx context.Context) (*state, error) {
	conn, err := pgx.Connect(ctx, b.o.adminURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "colindex_bench_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(b.o.adminURL)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &state{db: name, dbURL: u.String(), index: filepath.Join(b.o.workDir, name)}, nil
}

func (b *bench) drop(ctx context.Context, st *state) {
	if conn, err := pgx.Connect(ctx, b.o.adminURL); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+st.db+" WITH (FORCE)")
		conn.Close(ctx)
	}
	_ = os.RemoveAll(st.index)
}
