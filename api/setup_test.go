package api

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"riverqueue.com/riverui"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testlog"
	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/rocksindex"
)

const testPassword = "correct-horse-battery-staple"

// stack is a whole colindex (real Postgres, RocksDB, River, River UI) behind an httptest server.
type stack struct {
	srv   *Server
	http  *httptest.Server
	index *rocksindex.Index
}

type stackOpts struct {
	failedLogins   int // 0: enough for tests that send many wrong passwords
	lexiconListURL string
	pagePause      time.Duration
	pageLimit      int
}

func newStack(t *testing.T, opts stackOpts) *stack {
	t.Helper()
	logger := testlog.New(t) // first, so that its cleanup runs after the workers'
	if opts.pageLimit == 0 {
		opts.pageLimit = 7
	}
	pool := pgtest.NewPool(t)
	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, jobs.BindIndex(context.Background(), pool, index, "test"))
	cfg := jobs.Config{
		Pool: pool, Index: index, Logger: logger, LexiconListURL: opts.lexiconListURL,
		PageLimit: opts.pageLimit, PagePause: opts.pagePause, Concurrency: 4,
	}
	backfill, err := jobs.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, backfill.StartWorkers(ctx))
	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(backfill.River, nil), Logger: logger, Prefix: "/riverui",
	})
	require.NoError(t, err)
	require.NoError(t, ui.Start(ctx))

	srv := &Server{
		Backfill: backfill,
		Index:    index, Pool: pool, AdminPassword: testPassword, DefaultSource: "bsky.network",
		Logger: logger, RiverUI: ui, FailedLogins: cmp.Or(opts.failedLogins, 1000),
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(index.Close)
	t.Cleanup(func() {
		hs.Close()
		// No grace: cancel what runs at once.
		stopCtx, stopCancel := context.WithCancel(context.Background())
		stopCancel()
		backfill.StopWorkers(stopCtx, 10*time.Second)
		cancel()
	})
	return &stack{srv: srv, http: hs, index: index}
}

// do sends a request with optional headers ("Name: value") and returns status and body.
func (s *stack) do(t *testing.T, method, path string, headers ...string) (int, string) {
	t.Helper()
	return s.send(t, method, path, "", headers...)
}

// send is do with a request body.
func (s *stack) send(t *testing.T, method, path, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.http.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// sendJSON sends a JSON body as the admin.
func (s *stack) sendJSON(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return s.send(t, method, path, body, adminAuth, "Content-Type: application/json")
}

var adminAuth = "Authorization: Bearer " + testPassword

// waitBackfillDone waits, at most 30 s, until the status no longer says running, and returns it.
func (s *stack) waitBackfillDone(t *testing.T) jobs.Status {
	t.Helper()
	var st jobs.Status
	await.Until(t, 30*time.Second, "the backfill to finish", func() (bool, any) {
		code, body := s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
		require.Equal(t, http.StatusOK, code, body)
		st = jobs.Status{}
		require.NoError(t, json.Unmarshal([]byte(body), &st), body)
		return !st.Running, body
	})
	return st
}
