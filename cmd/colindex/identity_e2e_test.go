package main

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// runOnce runs the binary with the service's environment (overridden by extra) and returns
// its combined output and exit error.
func (s *service) runOnce(extra []string, args ...string) (string, error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(s.t), args...)
	cmd.Env = append(slices.Clone(s.env), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *service) envValue(key string) string {
	for _, e := range slices.Backward(s.env) {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// A serve whose index is not the one the database was built with (a second serve with its
// own index, or the index wiped) refuses to start and says how to recover; reopen-all then
// binds the new index and the next start pages everything into it, exactly.
func TestServeRefusesAnIndexThatIsNotTheDatabasesAndReopenAllRecovers(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := networkShaped(relay, 3, 300)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))
	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=100", "COLINDEX_PAGE_PAUSE=1ms")
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	svc.requireExactly(relay, names, time.Minute)

	// A second serve on the same database, with an index of its own, while the first runs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	otherAddr := ln.Addr().String()
	require.NoError(t, ln.Close())
	otherIndex := filepath.Join(t.TempDir(), "other")
	out, err := svc.runOnce([]string{"COLINDEX_INDEX_DIR=" + otherIndex, "COLINDEX_LISTEN=" + otherAddr}, "serve")
	require.Error(t, err, out)
	require.Contains(t, out, "is not the one this database describes")
	require.Contains(t, out, "colindex reopen-all --index-dir "+otherIndex)

	// The index is wiped (here: the service moves to an empty directory).
	require.NoError(t, svc.stop(syscall.SIGTERM))
	svc.env = append(svc.env, "COLINDEX_INDEX_DIR="+otherIndex)
	out, err = svc.runOnce(nil, "serve")
	require.Error(t, err, out)
	require.Contains(t, out, "reopen-all")

	out, err = svc.runOnce(nil, "reopen-all")
	require.NoError(t, err, out)
	require.Contains(t, out, "every collection reopened")
	svc.start()
	st, _ := svc.status()
	require.Zero(t, st.Completed, "every collection waits to be paged again")
	code, body = svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	// Paged from the beginning a second time, on purpose: compare the new index as sets.
	st = svc.waitIdle(time.Minute)
	require.Equal(t, len(names), st.Completed)
	for _, c := range st.Collections {
		want := slices.Sorted(slices.Values(relay.Collection(c.Collection)))
		require.EqualValues(t, len(want), c.Imported, c.Collection)
		require.Equal(t, want, svc.listAll(c.Collection), c.Collection)
	}
}

// A serve that cannot listen (the port is taken) exits before River takes any page job: the
// jobs stay available for the process that can serve.
func TestServeListensBeforeTakingJobs(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	out, err := svc.runOnce(nil, "migrate")
	require.NoError(t, err, out)
	ctx := context.Background()
	db, err := pgx.Connect(ctx, svc.envValue("DATABASE_URL"))
	require.NoError(t, err)
	defer db.Close(ctx)
	var id int64
	require.NoError(t, db.QueryRow(ctx, `
		INSERT INTO river_job (args, kind, max_attempts, queue, state, priority, metadata)
		VALUES ('{"collection":"com.example.a"}', 'backfill_page', 12, 'backfill_pages', 'available', 1, '{}')
		RETURNING id`).Scan(&id))

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	out, err = svc.runOnce([]string{"COLINDEX_LISTEN=" + taken.Addr().String()}, "serve")
	require.Error(t, err, out)
	require.Contains(t, out, "address already in use")

	var state string
	var attempt int
	require.NoError(t, db.QueryRow(ctx, `SELECT state, attempt FROM river_job WHERE id = $1`, id).Scan(&state, &attempt))
	require.Equal(t, "available", state)
	require.Zero(t, attempt, "no attempt was spent by a process that could not serve")
}
