package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testrelay"
)

const e2ePassword = "e2e-admin-password-0123456789"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds colindex once per test run: the end-to-end tests drive the real executable.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "colindex-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "colindex")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// service is one colindex serve process; restarting keeps its database and index.
type service struct {
	t    *testing.T
	env  []string
	base string
	cmd  *exec.Cmd
	logs *logBuffer
}

// logBuffer collects a process's output; tests read it while the process still writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newService(t *testing.T, relay *testrelay.Relay, extraEnv ...string) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s := &service{
		t:    t,
		base: "http://" + addr,
		env: append([]string{
			"DATABASE_URL=" + pgtest.NewDatabase(t),
			"RELAY_ADMIN_PASSWORD=" + e2ePassword,
			"COLINDEX_LISTEN=" + addr,
			"COLINDEX_INDEX_DIR=" + filepath.Join(t.TempDir(), "index"),
			"COLINDEX_LEXICON_LIST_URL=" + relay.URL + "/llms.txt",
			"COLINDEX_DEFAULT_SOURCE=" + relay.URL,
			"COLINDEX_SOURCE_RPS=0",
			// No stream unless a test brings its own relay: the default is bsky.network.
			"COLINDEX_FIREHOSE_URL=",
			"PATH=" + os.Getenv("PATH"),
		}, extraEnv...),
	}
	t.Cleanup(func() {
		s.stop(syscall.SIGKILL)
		if t.Failed() && s.logs != nil {
			t.Logf("colindex logs:\n%s", s.logs.String())
		}
	})
	return s
}

func (s *service) start() {
	s.t.Helper()
	s.cmd = exec.Command(binary(s.t), "serve")
	s.cmd.Env = s.env
	s.logs = &logBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	require.NoError(s.t, s.cmd.Start())
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/_health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.True(s.t, time.Now().Before(deadline), "colindex did not become healthy:\n%s", s.logs.String())
		time.Sleep(50 * time.Millisecond)
	}
}

// stop signals the process and waits for it, returning its exit error.
func (s *service) stop(sig syscall.Signal) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	err := s.cmd.Wait()
	s.cmd = nil
	return err
}

func (s *service) call(method, path string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+e2ePassword)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, b
}

type e2eStatus struct {
	Running       bool  `json:"running"`
	Total         int   `json:"total"`
	Completed     int   `json:"completed"`
	InProgress    int   `json:"in_progress"`
	TotalImported int64 `json:"total_imported"`
	Collections   []struct {
		Collection string `json:"collection"`
		Source     string `json:"source"`
		Imported   int64  `json:"imported"`
		Indexed    int64  `json:"indexed"`
		Completed  bool   `json:"completed"`
		Cursor     string `json:"cursor"`
	} `json:"collections"`
}

func (s *service) status() (e2eStatus, map[string]any) {
	s.t.Helper()
	code, body := s.call(http.MethodGet, "/admin/backfill-collections")
	require.Equal(s.t, http.StatusOK, code, string(body))
	var st e2eStatus
	var raw map[string]any
	require.NoError(s.t, json.Unmarshal(body, &st))
	require.NoError(s.t, json.Unmarshal(body, &raw))
	return st, raw
}

func (s *service) waitIdle(timeout time.Duration) e2eStatus {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, _ := s.status()
		if !st.Running {
			return st
		}
		require.True(s.t, time.Now().Before(deadline), "backfill still running after %s", timeout)
		time.Sleep(100 * time.Millisecond)
	}
}

// waitResumed waits until every chain that was interrupted (a collection started but not
// complete when the service restarted) has committed a page since, or completed, and returns
// how long after restarted that was. Chains that were between two links resume at once; the
// ones killed mid-page wait for River's rescuer. Collections not started yet are not
// interrupted: they wait for a worker as they would have anyway.
func (s *service) waitResumed(restarted time.Time) time.Duration {
	s.t.Helper()
	atRestart := map[string]int64{}
	st, _ := s.status()
	for _, c := range st.Collections {
		if !c.Completed && c.Imported > 0 {
			atRestart[c.Collection] = c.Imported
		}
	}
	require.NotEmpty(s.t, atRestart, "nothing was interrupted")
	for {
		st, _ = s.status()
		stalled := 0
		for _, c := range st.Collections {
			if from, ok := atRestart[c.Collection]; ok && !c.Completed && c.Imported == from {
				stalled++
			}
		}
		if stalled == 0 {
			return time.Since(restarted)
		}
		require.Less(s.t, time.Since(restarted), 2*time.Minute, "%d chains did not resume", stalled)
		time.Sleep(100 * time.Millisecond)
	}
}

// listAll pages a collection out of the XRPC endpoint.
func (s *service) listAll(collection string) []string {
	s.t.Helper()
	var out []string
	cursor := ""
	for {
		q := url.Values{"collection": {collection}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		resp, err := http.Get(s.base + "/xrpc/com.atproto.sync.listReposByCollection?" + q.Encode())
		require.NoError(s.t, err)
		var page struct {
			Repos []struct {
				DID string `json:"did"`
			} `json:"repos"`
			Cursor string `json:"cursor"`
		}
		require.Equal(s.t, http.StatusOK, resp.StatusCode)
		require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&page))
		resp.Body.Close()
		for _, r := range page.Repos {
			out = append(out, r.DID)
		}
		if page.Cursor == "" {
			return out
		}
		cursor = page.Cursor
	}
}

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
	for {
		st, _ := svc.status()
		if st.TotalImported > 500 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
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
