package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/benchrelay"
)

func (r readRun) cpuPerMillion() time.Duration { return perMillion(r.cpu, r.dids) }

func (r readRun) walkersPerMillion() time.Duration { return perMillion(r.walkers, r.dids) }

func perMillion(t time.Duration, dids int) time.Duration {
	return time.Duration(float64(t) / float64(dids) * 1e6)
}

// busy is the share of the machine's cores that the server and the walkers kept busy.
func (r readRun) busy() float64 {
	return (r.cpu + r.walkers).Seconds() / (r.wall.Seconds() * float64(runtime.NumCPU()))
}

// ceiling is the most any server could show over peer on this machine with these walkers:
// when the cores are the limit, DIDs/s is cores / (walkers' + server's CPU per DID), so a
// server that cost nothing would reach (walkers' + peer's) / walkers' times peer's DIDs/s.
func ceiling(peer readRun) float64 {
	return (peer.walkersPerMillion() + peer.cpuPerMillion()).Seconds() / peer.walkersPerMillion().Seconds()
}

// readReport runs the read benchmark and prints its table and targets.
func (b *bench) readReport(ctx context.Context) error {
	if b.o.collectiondir == "" {
		return fmt.Errorf("-only read compares with indigo's collectiondir: pass -collectiondir (make bench does)")
	}
	d := benchrelay.NewDataset(benchrelay.Spec{Collections: b.o.collections, Pairs: b.o.pairs, LargestShare: 0.3, Prefix: "com.bench"})
	runs, servers, loaded, peerLoad, err := b.readBench(ctx, d)
	if err != nil {
		return err
	}
	fmt.Printf("\nReading: every collection paged to its end by %d concurrent walkers, one server at a time, "+
		"%d collections, %d pairs (largest %d), plain bodies; both servers' DIDs checked against the data set, "+
		"collection by collection. Loading: colindex %s (zero-latency backfill), collectiondir build --csv %s.\n\n",
		readWalkers, len(d.Names), d.Pairs(), d.Sizes[0], loaded.wall.Round(10*time.Millisecond), peerLoad.Round(10*time.Millisecond))
	fmt.Println("| server | limit | requests | DIDs/s | p50 | p99 | server CPU per 1M DIDs | walkers' CPU per 1M DIDs | cores busy |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range runs {
		fmt.Printf("| %s | %d | %d | %.0f | %s | %s | %s | %s | %.0f%% |\n", r.server, r.limit, r.requests, r.didsPerSec(),
			percentile(r.latencies, 0.5).Round(time.Microsecond), percentile(r.latencies, 0.99).Round(time.Microsecond),
			r.cpuPerMillion().Round(time.Millisecond), r.walkersPerMillion().Round(time.Millisecond), 100*r.busy())
	}
	fmt.Println("\nServer CPU: the server process's user+system time during the walks (colindex's with its " +
		"Postgres backends). Walkers' CPU: this benchmark's own, which runs only the walkers then. Cores busy: " +
		"both together, as a share of the machine's cores.")
	fmt.Printf("\nIdle, after the warm-up walk: ")
	for k, p := range servers {
		if k > 0 {
			fmt.Print("; ")
		}
		fmt.Printf("%s %s of CPU a second", p.name, (p.idle / time.Duration(readIdle.Seconds())).Round(100*time.Microsecond))
	}
	fmt.Println(" (with its Postgres backends for colindex): what a server costs with nothing asked of it, and a part of every row above.")
	fmt.Println()
	fmt.Println("| target | measured | holds |")
	fmt.Println("|---|---|---|")
	target := func(name, measured string, ok bool) {
		fmt.Printf("| %s | %s | %s |\n", name, measured, map[bool]string{true: "yes", false: "**no**"}[ok])
	}
	for k := 0; k+1 < len(runs); k += 2 {
		ours, peer := runs[k], runs[k+1]
		x := ours.didsPerSec() / peer.didsPerSec()
		target(fmt.Sprintf("≥ 2 × collectiondir's DIDs/s at limit %d", ours.limit),
			fmt.Sprintf("%.2f × (%.0f vs %.0f)", x, ours.didsPerSec(), peer.didsPerSec()), x >= 2)
		op, pp := percentile(ours.latencies, 0.99), percentile(peer.latencies, 0.99)
		target(fmt.Sprintf("lower p99 than collectiondir at limit %d", ours.limit),
			fmt.Sprintf("%s vs %s", op.Round(time.Microsecond), pp.Round(time.Microsecond)), op < pp)
		c := peer.cpuPerMillion().Seconds() / ours.cpuPerMillion().Seconds()
		fmt.Printf("| (for information) DIDs per server CPU-second at limit %d | %.2f × collectiondir's | |\n", ours.limit, c)
		fmt.Printf("| (for information) the most a server costing nothing could show here at limit %d | %.2f × collectiondir's | |\n",
			ours.limit, ceiling(peer))
	}
	target("the same DID set per collection on both servers", fmt.Sprintf("%d of %d collections", len(d.Names), len(d.Names)), true)
	return nil
}

// serveColindexOn starts colindex serve on a kept database and index (nothing to follow,
// nothing to backfill) and returns its base URL, its processes (itself and its Postgres
// backends) and a stop function.
func (b *bench) serveColindexOn(ctx context.Context, st *state) (string, func() []int, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, nil, err
	}
	logPath := filepath.Join(b.o.workDir, "read-colindex.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", nil, nil, err
	}
	cmd := exec.Command(b.o.colindex, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+st.dbURL, "RELAY_ADMIN_PASSWORD="+benchPassword,
		"COLINDEX_LISTEN="+addr, "COLINDEX_INDEX_DIR="+st.index, "COLINDEX_LEXICON_LIST_URL=", "COLINDEX_FIREHOSE_URL=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, nil, fmt.Errorf("start colindex: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logFile.Close()
	}
	base := "http://" + addr
	if err := waitHealthy(base); err != nil {
		stop()
		return "", nil, nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	pids := func() []int {
		out := []int{cmd.Process.Pid}
		conn, err := pgx.Connect(ctx, b.o.adminURL)
		if err != nil {
			return out
		}
		defer conn.Close(ctx)
		rows, _ := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", st.db)
		backends, _ := pgx.CollectRows(rows, pgx.RowTo[int32])
		for _, p := range backends {
			out = append(out, int(p))
		}
		return out
	}
	return base, pids, stop, nil
}

// serveCollectiondir loads every pair of d into a fresh collectiondir store (its build
// command reads did,collection rows, no header) and serves it.
func (b *bench) serveCollectiondir(d *benchrelay.Dataset) (string, func() []int, func(), time.Duration, error) {
	dir, err := os.MkdirTemp(b.o.workDir, "read-collectiondir-")
	if err != nil {
		return "", nil, nil, 0, err
	}
	csvPath := filepath.Join(dir, "pairs.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		return "", nil, nil, 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var line []byte
	for i, name := range d.Names {
		for j := range d.Sizes[i] {
			line = d.AppendDID(line[:0], d.Account(i, j))
			line = append(append(append(line, ','), name...), '\n')
			_, _ = w.Write(line)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", nil, nil, 0, err
	}
	f.Close()
	pebble := filepath.Join(dir, "pebble")
	t0 := time.Now()
	out, err := exec.Command(b.o.collectiondir, "build", "--csv", csvPath, "--pebble", pebble).CombinedOutput()
	if err != nil {
		return "", nil, nil, 0, fmt.Errorf("collectiondir build: %w: %s", err, out)
	}
	load := time.Since(t0)
	apiAddr, err := freeAddr()
	if err != nil {
		return "", nil, nil, 0, err
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return "", nil, nil, 0, err
	}
	logFile, err := os.Create(filepath.Join(b.o.workDir, "read-collectiondir.log"))
	if err != nil {
		return "", nil, nil, 0, err
	}
	cmd := exec.Command(b.o.collectiondir, "serve", "--pebble", pebble, "--dau-directory", filepath.Join(dir, "dau"),
		"--api-listen", apiAddr, "--metrics-listen", metricsAddr)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", nil, nil, 0, fmt.Errorf("start collectiondir: %w", err)
	}
	stop := func() {
		stopWithin(cmd, 10*time.Second)
		logFile.Close()
		_ = os.RemoveAll(dir)
	}
	base := "http://" + apiAddr
	if err := waitHealthy(base); err != nil {
		stop()
		return "", nil, nil, 0, fmt.Errorf("collectiondir: %w", err)
	}
	return base, func() []int { return []int{cmd.Process.Pid} }, stop, load, nil
}

// saveProfile fetches a 3-second CPU profile from colindex's admin side.
func saveProfile(base, path string) error { return saveDebug(base, "profile", path) }

// saveDebug fetches 3 seconds of one of Go's profiles (profile, trace) from colindex's admin
// side.
func saveDebug(base, kind, path string) error {
	resp, err := adminDo(http.MethodGet, base+"/debug/pprof/"+kind+"?seconds=3")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", kind, resp.StatusCode)
	}
	// The directory a -…-profile flag names need not exist yet.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// procCPU reads each process's CPU time so far (user and system, all threads), from
// /proc/<pid>/stat in clock ticks of 1/100 s.
func procCPU(pids []int) map[int]time.Duration {
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: count fields after it.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
		stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
		out[pid] = time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return out
}
