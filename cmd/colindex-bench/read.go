package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
)

// The read benchmark: the scaled data set loaded into colindex (a zero-latency backfill, to
// completion) and into indigo's collectiondir (`collectiondir build --csv`, the same pairs),
// then every collection paged to its end on each server by the same walkers, one server at
// a time, at limit 1000 and at limit 100. Each walk's DIDs are checked against the data set,
// collection by collection, so both servers are shown to return the same sets.

const readWalkers = 8

var (
	readRounds  = flag.Int("read-rounds", 3, "read benchmark: walks of every collection per measured run (their figures pooled)")
	readProfile = flag.String("read-profile", "", "read benchmark: save a CPU profile of colindex during each measured run into this directory")
)

// readRun is one walk of every collection on one server.
type readRun struct {
	server    string
	limit     int
	wall      time.Duration
	dids      int
	requests  int
	latencies []time.Duration // per request, sorted
	cpu       time.Duration   // the server's CPU time (with its Postgres backends)
	cpuMain   time.Duration   // the server process's alone
	walkers   time.Duration   // the walkers' CPU time (this process, which runs nothing else then)
}

func (r readRun) didsPerSec() float64 { return float64(r.dids) / r.wall.Seconds() }

// pager walks one collection on one server: each server has its own cursor, so the walk
// only follows what it is given.
type pager struct {
	name   string
	base   string
	client *http.Client
	pids   func() []int  // the server's processes, for its CPU time (procCPU)
	idle   time.Duration // its CPU time over readIdle with nothing asked of it
}

// readIdle is how long each server is left alone, after its warm-up walk, to measure what it
// costs with nothing to do: timers, pollers, its database.
const readIdle = 10 * time.Second

// idleCPU is the server's CPU time (with its Postgres backends) over d with no requests.
func (p pager) idleCPU(d time.Duration) time.Duration {
	pids := p.pids()
	before := procCPU(pids)
	time.Sleep(d)
	var t time.Duration
	for pid, after := range procCPU(pids) {
		t += after - before[pid]
	}
	return t
}

// walkAll pages every collection of d to its end with readWalkers walkers (largest
// collections first, so the longest chain starts at once). With check, each collection's
// DIDs are compared, as a set, with the data set's.
func (p pager) walkAll(d *benchrelay.Dataset, limit int, check bool) (readRun, error) {
	jobs := make(chan int, len(d.Names))
	for i := range d.Names {
		jobs <- i
	}
	close(jobs)
	var (
		mu   sync.Mutex
		run  = readRun{server: p.name, limit: limit}
		errs []error
		wg   sync.WaitGroup
	)
	pids := p.pids()
	cpuBefore := procCPU(pids)
	self := []int{os.Getpid()}
	walkersBefore := procCPU(self)[self[0]]
	start := time.Now()
	for range readWalkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var buf bytes.Buffer
			dids, requests := 0, 0
			for i := range jobs {
				n, got, l, err := p.walk(d.Names[i], limit, check, &buf)
				lat = append(lat, l...)
				requests += len(l)
				dids += n
				if err == nil && check {
					err = sameSet(d, i, got)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s %s: %w", p.name, d.Names[i], err))
					mu.Unlock()
				}
			}
			mu.Lock()
			run.latencies = append(run.latencies, lat...)
			run.dids += dids
			run.requests += requests
			mu.Unlock()
		}()
	}
	wg.Wait()
	run.wall = time.Since(start)
	run.walkers = procCPU(self)[self[0]] - walkersBefore
	for pid, t := range procCPU(p.pids()) {
		run.cpu += t - cpuBefore[pid]
		if pid == pids[0] {
			run.cpuMain += t - cpuBefore[pid]
		}
	}
	slices.Sort(run.latencies)
	if len(errs) > 0 {
		return run, fmt.Errorf("%d collections wrong, first: %w", len(errs), errs[0])
	}
	return run, nil
}

// walk pages one collection and returns how many DIDs it listed (and, with keep, the DIDs)
// and each request's latency (request sent to body read, before parsing). buf is the
// walker's own body buffer, reused so the client allocates little per request.
func (p pager) walk(collection string, limit int, keep bool, buf *bytes.Buffer) (int, []string, []time.Duration, error) {
	var dids []string
	var lat []time.Duration
	count, cursor := 0, ""
	for pages := 0; pages < 1_000_000; pages++ {
		u := p.base + "/xrpc/com.atproto.sync.listReposByCollection?collection=" + url.QueryEscape(collection) +
			"&limit=" + strconv.Itoa(limit)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		t0 := time.Now()
		resp, err := p.client.Get(u)
		if err != nil {
			return 0, nil, lat, err
		}
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if err != nil {
			return 0, nil, lat, err
		}
		body := buf.Bytes()
		if resp.StatusCode != http.StatusOK {
			return 0, nil, lat, fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		var n int
		if n, dids, cursor, err = parsePage(body, dids, keep); err != nil {
			return 0, nil, lat, err
		}
		count += n
		if cursor == "" {
			return count, dids, lat, nil
		}
	}
	return 0, nil, lat, fmt.Errorf("no end after a million pages")
}

var (
	didField    = []byte(`"did":"`)
	cursorField = []byte(`"cursor":"`)
)

// parsePage reads a listReposByCollection page without encoding/json: the client shares
// the two cores with the servers being measured, so it must cost as little as it can. DIDs
// and both servers' cursors (DIDs, unpadded base64url) never hold quotes or escapes. It
// counts the DIDs, and appends them to dids only with keep.
func parsePage(body []byte, dids []string, keep bool) (int, []string, string, error) {
	if !bytes.Contains(body, []byte(`"repos":[`)) {
		return 0, dids, "", fmt.Errorf("not a page: %.200s", body)
	}
	n := 0
	for rest := body; ; {
		i := bytes.Index(rest, didField)
		if i < 0 {
			break
		}
		rest = rest[i+len(didField):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return 0, dids, "", fmt.Errorf("unterminated DID")
		}
		n++
		if keep {
			dids = append(dids, string(rest[:j]))
		}
		rest = rest[j+1:]
	}
	i := bytes.Index(body, cursorField)
	if i < 0 {
		return n, dids, "", nil
	}
	rest := body[i+len(cursorField):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, dids, "", fmt.Errorf("unterminated cursor")
	}
	return n, dids, string(rest[:j]), nil
}

// sameSet compares the DIDs a server listed for collection i with the data set's.
func sameSet(d *benchrelay.Dataset, i int, got []string) error {
	want := make([]string, d.Sizes[i])
	for j := range want {
		want[j] = d.DID(i, j)
	}
	slices.Sort(want)
	got = slices.Clone(got)
	slices.Sort(got)
	if len(got) != len(want) {
		return fmt.Errorf("%d DIDs, want %d", len(got), len(want))
	}
	for k := range got {
		if got[k] != want[k] {
			return fmt.Errorf("DID %q listed, %q expected at rank %d", got[k], want[k], k)
		}
	}
	return nil
}

func newPager(name, base string, pids func() []int) pager {
	// Plain bodies from both: collectiondir does not compress, and gzip would only measure
	// the compressor. Enough idle connections that no walker ever reconnects.
	tr := &http.Transport{DisableCompression: true, MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	return pager{name: name, base: base, client: &http.Client{Transport: tr, Timeout: time.Minute}, pids: pids}
}

// readBench loads both servers and walks them; it returns the runs in table order.
func (b *bench) readBench(ctx context.Context, d *benchrelay.Dataset) ([]readRun, []pager, result, time.Duration, error) {
	loaded, err := b.backfill(ctx, scenario{name: "read: load colindex (zero latency)", data: d,
		settings: settings{concurrency: 8, rps: 0, pause: 0, limit: 10000}, keep: true})
	if err != nil {
		return nil, nil, loaded, 0, err
	}
	defer b.drop(ctx, loaded.state)
	ours, ourPIDs, stopOurs, err := b.serveColindexOn(ctx, loaded.state)
	if err != nil {
		return nil, nil, loaded, 0, err
	}
	defer stopOurs()
	log.Printf("read: writing %d pairs as CSV and loading collectiondir", d.Pairs())
	peer, peerPIDs, stopPeer, peerLoad, err := b.serveCollectiondir(d)
	if err != nil {
		return nil, nil, loaded, 0, err
	}
	defer stopPeer()
	log.Printf("read: collectiondir build took %s", peerLoad.Round(time.Millisecond))

	servers := []pager{newPager("colindex", ours, ourPIDs), newPager("indigo collectiondir", peer, peerPIDs)}
	// One checked walk each first: it proves the sets and warms both servers' caches.
	for _, p := range servers {
		r, err := p.walkAll(d, 1000, true)
		if err != nil {
			return nil, nil, loaded, peerLoad, err
		}
		log.Printf("read: %s: warm-up walk, every collection's DIDs match the data set (%d DIDs)", p.name, r.dids)
	}
	for k := range servers {
		servers[k].idle = servers[k].idleCPU(readIdle)
		log.Printf("read: %s idle for %s: %s of CPU (with its Postgres backends)", servers[k].name, readIdle,
			servers[k].idle.Round(time.Millisecond))
	}
	var runs []readRun
	for _, limit := range []int{1000, 100} {
		// Rounds alternate between the servers, so a change in the machine's other load
		// falls on both alike; each server's rounds are pooled.
		pooled := make([]readRun, len(servers))
		for round := range *readRounds {
			for k, p := range servers {
				var profiled chan error
				if *readProfile != "" && k == 0 && round == 0 {
					profiled = make(chan error, 1)
					go func() {
						profiled <- saveProfile(ours, filepath.Join(*readProfile, fmt.Sprintf("read-%d.pprof", limit)))
					}()
				}
				// Unchecked (the warm-up checked the sets; a check here would be timed),
				// but every pair must still come back.
				one, err := p.walkAll(d, limit, false)
				if profiled != nil {
					if perr := <-profiled; perr != nil {
						log.Printf("read: profile: %v", perr)
					}
				}
				if err != nil {
					return nil, nil, loaded, peerLoad, err
				}
				if one.dids != d.Pairs() {
					return nil, nil, loaded, peerLoad, fmt.Errorf("%s at limit %d: %d DIDs, want %d", p.name, limit, one.dids, d.Pairs())
				}
				r := &pooled[k]
				r.server, r.limit = one.server, one.limit
				r.wall += one.wall
				r.dids += one.dids
				r.requests += one.requests
				r.latencies = append(r.latencies, one.latencies...)
				r.cpu += one.cpu
				r.cpuMain += one.cpuMain
				r.walkers += one.walkers
			}
		}
		for _, r := range pooled {
			slices.Sort(r.latencies)
			log.Printf("read: %s at limit %d: %.0f DIDs/s, %d requests, p50 %s, p99 %s, server CPU %s (process alone %s)",
				r.server, limit, r.didsPerSec(), r.requests, percentile(r.latencies, 0.5), percentile(r.latencies, 0.99),
				r.cpu.Round(time.Millisecond), r.cpuMain.Round(time.Millisecond))
			runs = append(runs, r)
		}
	}
	return runs, servers, loaded, peerLoad, nil
}
