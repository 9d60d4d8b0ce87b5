package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
)

// The full-network rehearsal (issue 13): a synthetic source shaped like bsky.network's index,
// about 61M pairs over 1,300 collections with the largest near 30M and a long tail, paged at
// limit 10000 with no latency and no cap into one colindex on this machine; then the index on
// disk, a restart to serving, reads of the largest and a tail collection, and the status.
//
//	go run ./cmd/colindex-bench -only rehearsal [-rehearsal-pairs 61000000]

// rehearsalShape is bsky.network's index as of late 2026: the largest collection (likes)
// holds about half of all pairs.
const (
	rehearsalCollections  = 1300
	rehearsalLargestShare = 0.49
)

func (b *bench) rehearsal(ctx context.Context) error {
	data := benchrelay.NewDataset(benchrelay.Spec{Collections: rehearsalCollections, Pairs: b.o.rehearsalPairs,
		LargestShare: rehearsalLargestShare, Prefix: "app.rehearsal", RandomDIDs: true})
	log.Printf("rehearsal: %d collections, %d pairs, largest %d, smallest %d", len(data.Names), data.Pairs(), data.Sizes[0], data.Sizes[len(data.Sizes)-1])
	// The ceiling over the first 10M pairs (the largest collection's), in the pages' batches.
	ceiling, err := writeCeilingOf(data, b.o.workDir, 10000, min(10_000_000, data.Pairs()))
	if err != nil {
		return err
	}
	fast := settings{concurrency: 8, rps: 0, pause: 0, limit: 10000}
	res, err := b.backfill(ctx, scenario{name: "rehearsal", data: data, settings: fast, keep: true})
	if err != nil {
		return err
	}
	defer b.drop(ctx, res.state)
	disk := sstBytes(res.state.index)

	// The live stream for the restart: commits replayed from the start, so the follower is
	// ingesting as fast as it can while the reads below are measured.
	log.Printf("rehearsal: generating %d stream commits", rehearsalStreamCommits)
	stream, err := generateStream(rehearsalStreamCommits/20, rehearsalStreamCommits+liveRate*liveSeconds, 50, 10)
	if err != nil {
		return err
	}
	live := stream.events[rehearsalStreamCommits:]
	stream.events = stream.events[:rehearsalStreamCommits]
	firehose, err := relayWith(stream.events)
	if err != nil {
		return err
	}
	defer firehose.Close()

	// Restart to serving: a fresh serve on the full index, until it answers a read.
	relay := benchrelay.New(data, benchrelay.Latency{})
	defer relay.Close()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(b.o.colindex, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+res.state.dbURL, "RELAY_ADMIN_PASSWORD="+benchPassword,
		"COLINDEX_LISTEN="+addr, "COLINDEX_INDEX_DIR="+res.state.index, "COLINDEX_FIREHOSE_URL="+firehose.URL(),
		"COLINDEX_LEXICON_LIST_URL=", "COLINDEX_DEFAULT_SOURCE="+relay.URL)
	logFile, err := os.Create(filepath.Join(b.o.workDir, "rehearsal-restart.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	stopServe := func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}
	defer stopServe()
	base := "http://" + addr
	if err := waitHealthy(base); err != nil {
		return err
	}
	largest, tail := data.Names[0], data.Names[len(data.Names)-1]
	if _, err := readPage(base, largest, "", 1000); err != nil {
		return err
	}
	restart := time.Since(began)

	// Reads while the stream ingests (its catch-up from the first event), then once it is
	// caught up.
	streamed, err := readsDuringStream(base, largest, tail, stream)
	if err != nil {
		return err
	}
	liveReads, err := readsDuringLiveStream(base, largest, tail, firehose, live)
	if err != nil {
		return err
	}
	readLargest, err := readLatencies(base, largest, 300)
	if err != nil {
		return err
	}
	readTail, err := readLatencies(base, tail, 300)
	if err != nil {
		return err
	}
	var statusTimes []time.Duration
	for range 20 {
		t := time.Now()
		if err := call(base, "GET", "/admin/backfill-collections", nil); err != nil {
			return err
		}
		statusTimes = append(statusTimes, time.Since(t))
	}
	slices.Sort(statusTimes)
	var countTimes []time.Duration
	for range 20 {
		t := time.Now()
		if err := call(base, "GET", "/v1/listCollections?limit=1000", nil); err != nil {
			return err
		}
		countTimes = append(countTimes, time.Since(t))
	}
	slices.Sort(countTimes)
	stopServe()
	families, err := diskByFamily(res.state.index)
	if err != nil {
		return err
	}

	fmt.Printf("\nRehearsal: %d pairs over %d collections (largest %d, %d of one page or less), limit 10000, "+
		"concurrency 8, no latency, no cap, on this machine.\n\n", data.Pairs(), len(data.Names), data.Sizes[0], onePage(data, 10000))
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| wall | %s |\n", res.wall.Round(time.Second))
	fmt.Printf("| DIDs/s | %.0f (%.0f%% of the raw write ceiling, %.0f DIDs/s over the first 10M pairs in 10,000-DID batches) |\n",
		res.didsPerSec(), 100*res.didsPerSec()/ceiling, ceiling)
	fmt.Printf("| peak RSS | %d MB |\n", res.peakRSS>>20)
	fmt.Printf("| index on disk (SST files) | %d MB, %.1f bytes per pair (rbc and cbr: each pair is two keys) |\n",
		disk>>20, float64(disk)/float64(data.Pairs()))
	fmt.Printf("| restart to serving (process start to a page of the largest collection, stream configured) | %s |\n", restart.Round(time.Millisecond))
	streamed.print(largest, tail, data.Sizes[len(data.Sizes)-1], "while the stream catches up as fast as it can")
	liveReads.print(largest, tail, data.Sizes[len(data.Sizes)-1], fmt.Sprintf("while the stream runs live at %d events/s", liveRate))
	fmt.Printf("| listReposByCollection, limit 1000, largest collection (%s) | p50 %s, p99 %s |\n", largest,
		percentile(readLargest, 0.5).Round(10*time.Microsecond), percentile(readLargest, 0.99).Round(10*time.Microsecond))
	fmt.Printf("| listReposByCollection, limit 1000, tail collection (%s, %d DIDs) | p50 %s, p99 %s |\n", tail, data.Sizes[len(data.Sizes)-1],
		percentile(readTail, 0.5).Round(10*time.Microsecond), percentile(readTail, 0.99).Round(10*time.Microsecond))
	fmt.Printf("| status endpoint, %d collections | p50 %s, max %s |\n", len(data.Names),
		percentile(statusTimes, 0.5).Round(100*time.Microsecond), statusTimes[len(statusTimes)-1].Round(100*time.Microsecond))
	fmt.Printf("| /v1/listCollections, limit 1000 | p50 %s, max %s |\n",
		percentile(countTimes, 0.5).Round(10*time.Microsecond), countTimes[len(countTimes)-1].Round(10*time.Microsecond))
	families.print(data)
	return nil
}

// onePage counts the collections whose DIDs fit in one page of limit.
func onePage(d *benchrelay.Dataset, limit int) int {
	n := 0
	for _, s := range d.Sizes {
		if s <= limit {
			n++
		}
	}
	return n
}

// sstBytes is the size of the SST files under dir.
func sstBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && filepath.Ext(p) == ".sst" {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// readLatencies pages a collection from its start, pages of 1,000, up to n requests, and
// returns each request's time, sorted.
func readLatencies(base, collection string, n int) ([]time.Duration, error) {
	var out []time.Duration
	cursor := ""
	for range n {
		t := time.Now()
		next, err := readPage(base, collection, cursor, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
		if next == "" {
			cursor = "" // a short collection: read it again
		} else {
			cursor = next
		}
	}
	slices.Sort(out)
	return out, nil
}

// readPage fetches one page and returns its cursor.
func readPage(base, collection, cursor string, limit int) (string, error) {
	q := url.Values{"collection": {collection}, "limit": {fmt.Sprint(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	resp, err := http.Get(base + "/xrpc/com.atproto.sync.listReposByCollection?" + q.Encode())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("read %s: HTTP %d", collection, resp.StatusCode)
	}
	var page struct {
		Cursor string `json:"cursor"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return "", err
	}
	return page.Cursor, nil
}
