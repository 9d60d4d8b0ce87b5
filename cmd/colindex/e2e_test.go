package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// networkShaped fills the relay with collections of long-tailed sizes that share DIDs.
func networkShaped(relay *testrelay.Relay, collections, largest int) []string {
	var names []string
	for i := range collections {
		name := fmt.Sprintf("com.example.c%02d", i)
		n := largest / (i + 1) // 1/rank sizes: a few large, many small
		dids := make([]string, n)
		for j := range dids {
			// DIDs shared across collections, in a first-seen order that is not DID order.
			dids[j] = fmt.Sprintf("did:plc:%024d", (j*7919+i)%(largest*2))
		}
		relay.Append(name, dids...)
		names = append(names, name)
	}
	return names
}

func TestEndToEndBackfillThroughTheBinary(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := networkShaped(relay, 30, 3000)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))

	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=100", "COLINDEX_PAGE_PAUSE=5ms")
	svc.start()

	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	var started map[string]any
	require.NoError(t, json.Unmarshal(body, &started))
	require.EqualValues(t, 30, started["collections"])

	code, body = svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusConflict, code, "a second start during the run: %s", body)

	st := svc.waitIdle(2 * time.Minute)
	_, raw := svc.status()
	for _, k := range []string{"running", "total", "completed", "in_progress", "total_imported", "collections"} {
		require.Contains(t, raw, k)
	}
	require.Equal(t, 30, st.Total)
	require.Equal(t, 30, st.Completed)
	require.Zero(t, st.InProgress)

	var total int64
	for _, c := range st.Collections {
		served := relay.Collection(c.Collection)
		require.True(t, c.Completed, c.Collection)
		require.EqualValues(t, len(served), c.Imported, c.Collection)
		require.Equal(t, relay.URL, c.Source)
		want := slices.Clone(served)
		slices.Sort(want)
		require.Equal(t, want, svc.listAll(c.Collection), c.Collection)
		total += c.Imported
	}
	require.Equal(t, total, st.TotalImported)

	// Re-run after completion: accepted, nothing re-imported, nothing fetched.
	requests := relay.Requests()
	code, body = svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, json.Unmarshal(body, &started))
	require.EqualValues(t, 0, started["collections"])
	st = svc.waitIdle(time.Minute)
	require.Equal(t, total, st.TotalImported)
	require.Equal(t, requests, relay.Requests())

	// /metrics reports the index per column family (the scrape reads RocksDB's properties).
	code, body = svc.call(http.MethodGet, "/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, family := range []string{"rbc", "cbr", "acct", "gone", "count"} {
		require.Contains(t, string(body), `colindex_index_sst_bytes{family="`+family+`"}`)
		require.Contains(t, string(body), `colindex_index_keys_estimate{family="`+family+`"}`)
	}

	// SIGTERM: a clean exit, and the admin password never reached a log line.
	require.NoError(t, svc.stop(syscall.SIGTERM))
	require.Contains(t, svc.logs.String(), `"msg":"stopped"`)
	require.NotContains(t, svc.logs.String(), e2ePassword)
}

func TestEndToEndKilledServiceResumesByItself(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := networkShaped(relay, 4, 4000)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))

	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=20", "COLINDEX_PAGE_PAUSE=10ms")
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))

	// Let it get going, then kill it without warning.
	svc.waitImported(500)
	_ = svc.stop(syscall.SIGKILL) // "signal: killed" is the expected exit

	restarted := time.Now()
	svc.start()
	// No admin call: every interrupted chain must come back by itself.
	resume := svc.waitResumed(restarted)
	t.Logf("every interrupted chain resumed %.1f s after the restart", resume.Seconds())
	require.Less(t, resume, time.Minute, "resume must start within a minute of the restart")

	svc.requireExactly(relay, names, 3*time.Minute)
}

// requireExactly waits for the backfill to end and checks every collection against what the
// relay served: complete, counted once, the same DID set in the index, and never paged again
// past a committed cursor.
func (s *service) requireExactly(relay *testrelay.Relay, names []string, timeout time.Duration) int {
	s.t.Helper()
	st := s.waitIdle(timeout)
	require.Equal(s.t, len(names), st.Completed)
	compared := 0
	code, body := s.call("GET", "/v1/listCollections?limit=1000")
	require.Equal(s.t, 200, code, string(body))
	var counts struct {
		Collections map[string]int64 `json:"collections"`
	}
	require.NoError(s.t, json.Unmarshal(body, &counts))
	for _, c := range st.Collections {
		served := relay.Collection(c.Collection)
		require.EqualValues(s.t, len(served), c.Imported, "%s counted exactly once", c.Collection)
		want := slices.Clone(served)
		slices.Sort(want)
		require.Equal(s.t, want, s.listAll(c.Collection), "%s: the index holds exactly what was served", c.Collection)
		require.EqualValues(s.t, len(want), c.Indexed, "%s: the indexed count in status", c.Collection)
		require.EqualValues(s.t, len(want), counts.Collections[c.Collection], "%s: the count listCollections serves", c.Collection)
		starts := relay.Starts(c.Collection)
		require.True(s.t, slices.IsSorted(starts), "%s was paged again past a committed cursor: %v", c.Collection, starts)
		compared += len(want)
	}
	return compared
}
