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
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
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
	// firstHealth is the status of the first /_health answer after the last start.
	firstHealth int
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
			// Its Postgres pool is sized from it (concurrency + 8): at the default 8, two
			// replica tests at once (four services) came near the server's 100 connections.
			"COLINDEX_CONCURRENCY=4",
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
			var h struct{ Status string }
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			// Up: healthy, or a replica serving while it copies (503, starting).
			if resp.StatusCode == http.StatusOK || h.Status == "starting" {
				s.firstHealth = resp.StatusCode
				return
			}
		}
		require.True(s.t, time.Now().Before(deadline), "colindex did not become healthy:\n%s", s.logs.String())
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor waits, at most 30 s, until cond holds, and fails with the service's logs if it does
// not.
func (s *service) waitFor(what string, cond func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		require.True(s.t, time.Now().Before(deadline), "timed out: %s\n%s", what, s.logs.String())
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

// waitImported waits (at most a minute) until the backfill has imported more than n DIDs.
func (s *service) waitImported(n int64) {
	s.t.Helper()
	await.Until(s.t, time.Minute, fmt.Sprintf("more than %d DIDs imported", n), func() (bool, any) {
		st, _ := s.status()
		return st.TotalImported > n, st.TotalImported
	})
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
	return s.listAllAt(collection, 1000)
}

// listAllAt is listAll with limit DIDs a page.
func (s *service) listAllAt(collection string, limit int) []string {
	s.t.Helper()
	var out []string
	cursor := ""
	for {
		q := url.Values{"collection": {collection}, "limit": {strconv.Itoa(limit)}}
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

// health reads a service's /_health.
func (s *service) health() (int, healthAnswer) {
	s.t.Helper()
	resp, err := http.Get(s.base + "/_health")
	require.NoError(s.t, err)
	defer resp.Body.Close()
	var h healthAnswer
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&h))
	return resp.StatusCode, h
}

type healthAnswer struct {
	Status    string `json:"status"`
	Ready     bool   `json:"ready"`
	Backfill  string `json:"backfill"`
	ReplicaOf string `json:"replica_of"`
	Firehose  *struct {
		URL      string `json:"url"`
		Cursor   int64  `json:"cursor"`
		CaughtUp bool   `json:"caught_up"`
	} `json:"firehose"`
}

// waitSettled waits until the service's durable cursor has reached seq and no PDS check is
// queued.
func (s *service) waitSettled(seq int64, timeout time.Duration) {
	s.t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		var fh struct {
			Cursor     int64                                `json:"cursor"`
			VerifyJobs struct{ Queued, Done, Failed int64 } `json:"verify_jobs"`
		}
		code, body := s.call(http.MethodGet, "/admin/firehose")
		require.Equal(s.t, http.StatusOK, code, string(body))
		require.NoError(s.t, json.Unmarshal(body, &fh))
		if fh.Cursor >= seq && fh.VerifyJobs.Queued == 0 {
			return
		}
		require.True(s.t, time.Now().Before(deadline), "not settled at seq %d: %s", seq, body)
	}
}
