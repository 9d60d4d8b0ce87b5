package main

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testrelay"
)

// SIGTERM mid-run: pages in flight finish or roll back, the process exits 0, and a restart
// finishes the backfill exactly.
func TestGracefulShutdownMidRun(t *testing.T) {
	t.Parallel()
	svc, relay, names := midBackfill(t)
	require.NoError(t, svc.stop(syscall.SIGTERM), "a clean exit")
	require.Contains(t, svc.logs.String(), `"msg":"stopped"`)

	svc.start()
	svc.requireExactly(relay, names, 2*time.Minute)
}

// Postgres goes away mid-run (the database refuses connections and every session is cut):
// the service stays up without spinning, /_health says what is wrong, and paging resumes by
// itself when Postgres is back.
func TestPostgresOutageMidRun(t *testing.T) {
	t.Parallel()
	svc, relay, names := midBackfill(t)

	db := databaseName(t, svc.env)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db)
	require.NoError(t, err)

	var health string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(svc.base + "/_health")
		require.NoError(t, err, "the HTTP server stays up")
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			health = string(b[:n])
			break
		}
		require.True(t, time.Now().Before(deadline), "health never reported the outage")
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, health, `"postgres":`)
	require.NotContains(t, health, `"postgres":"ok"`)
	require.Contains(t, health, `"index":"ok"`)

	cpuBefore := cpuTime(t, svc.cmd.Process.Pid)
	time.Sleep(3 * time.Second)
	require.Nil(t, svc.cmd.ProcessState, "the service did not exit")
	cpu := cpuTime(t, svc.cmd.Process.Pid) - cpuBefore
	t.Logf("CPU used during 3 s of outage: %s", cpu)
	require.Less(t, cpu, 1500*time.Millisecond, "no spinning while Postgres is away")

	_, err = admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true")
	require.NoError(t, err)
	svc.requireExactly(relay, names, 3*time.Minute)
}

// midBackfill starts a service on a small, slowly paged backfill and returns once it is
// under way.
func midBackfill(t *testing.T) (*service, *testrelay.Relay, []string) {
	t.Helper()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := networkShaped(relay, 4, 3000)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))
	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=20", "COLINDEX_PAGE_PAUSE=10ms")
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	svc.waitImported(299)
	return svc, relay, names
}

func databaseName(t *testing.T, env []string) string {
	t.Helper()
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "DATABASE_URL="); ok {
			cfg, err := pgx.ParseConfig(v)
			require.NoError(t, err)
			return cfg.Database
		}
	}
	t.Fatal("no DATABASE_URL")
	return ""
}

// cpuTime is the user+system CPU time a process has used, from /proc.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, err := strconv.ParseInt(fields[11], 10, 64)
	require.NoError(t, err)
	stime, err := strconv.ParseInt(fields[12], 10, 64)
	require.NoError(t, err)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}
