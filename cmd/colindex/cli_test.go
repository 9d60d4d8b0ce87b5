package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// cli runs the colindex binary's admin commands against svc, in an empty directory (no .env),
// with the given environment, and returns the combined output and the exit error.
func (s *service) cli(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (s *service) adminEnv() []string {
	return []string{"COLINDEX_URL=" + s.base, "COLINDEX_ADMIN_PASSWORD=" + e2ePassword}
}

func TestCLIDrivesTheServer(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := networkShaped(relay, 6, 400)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))
	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=10", "COLINDEX_PAGE_PAUSE=20ms")
	svc.start()
	env := svc.adminEnv()

	out, err := svc.cli(t, env, "start")
	require.NoError(t, err, out)
	require.Contains(t, out, "6 collections to page")

	out, err = svc.cli(t, env, "start")
	require.Error(t, err)
	require.Contains(t, out, "already running (409)")

	out, err = svc.cli(t, env, "pause")
	require.NoError(t, err, out)
	require.Contains(t, out, `"paused": true`)
	out, err = svc.cli(t, env, "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "backfill paused")
	out, err = svc.cli(t, env, "resume")
	require.NoError(t, err, out)
	require.Contains(t, out, `"paused": false`)

	// --watch draws bars until the run ends, then prints the summary.
	out, err = svc.cli(t, env, "status", "--watch", "--interval", "200ms")
	require.NoError(t, err, out)
	require.Contains(t, out, "collections")
	require.Contains(t, out, "DIDs")
	require.Contains(t, out, "backfill idle: 6/6 collections complete")

	out, err = svc.cli(t, env, "full")
	require.NoError(t, err, out)
	require.Contains(t, out, `"total_imported"`)

	out, err = svc.cli(t, env, "collection", names[0])
	require.NoError(t, err, out)
	require.Contains(t, out, `"dids_per_second"`)
	out, err = svc.cli(t, env, "collection", "com.example.none")
	require.Error(t, err)
	require.Contains(t, out, "answered 404")

	out, err = svc.cli(t, env, "reset", names[1])
	require.NoError(t, err, out)
	require.Contains(t, out, `"job_id"`)
	out, err = svc.cli(t, env, "cancel")
	require.NoError(t, err, out)
	require.Contains(t, out, `"cancelled_jobs"`)
	out, err = svc.cli(t, env, "retry")
	require.NoError(t, err, out)
	require.Contains(t, out, `"collections"`)
	st := svc.waitIdle(time.Minute)
	require.Equal(t, 6, st.Completed, "retry finished the collection the cancel interrupted")
	for _, c := range st.Collections {
		require.EqualValues(t, len(relay.Collection(c.Collection)), c.Imported, c.Collection)
	}
}

func TestCLIErrorsAreClear(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	svc.start()

	out, err := svc.cli(t, []string{"COLINDEX_URL=" + svc.base, "COLINDEX_ADMIN_PASSWORD=wrong"}, "status")
	require.Error(t, err)
	require.Contains(t, out, "refused the admin password (401)")
	require.NotContains(t, out, e2ePassword)

	out, err = svc.cli(t, []string{"COLINDEX_URL=http://127.0.0.1:1", "COLINDEX_ADMIN_PASSWORD=x"}, "status")
	require.Error(t, err)
	require.Contains(t, out, "cannot reach colindex at http://127.0.0.1:1")

	out, err = svc.cli(t, []string{"COLINDEX_URL=" + svc.base}, "status")
	require.Error(t, err)
	require.Contains(t, out, "no admin password")

	out, err = svc.cli(t, svc.adminEnv(), "start", "ftp://nope")
	require.Error(t, err)
	require.Contains(t, out, "answered 400")
}

// zlay operators' script and .env work as they are.
func TestBackfillStatusScriptReadsZlayDotEnv(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	relay.Append("com.example.z", "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
	relay.SetLLMsTxt(testrelay.LexiconList("com.example.z"))
	svc := newService(t, relay)
	svc.start()

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"),
		[]byte("ZLAY_DOMAIN="+svc.base+"\nZLAY_ADMIN_PASSWORD="+e2ePassword+"\n"), 0o600))
	script, err := filepath.Abs("../../scripts/backfill-status")
	require.NoError(t, err)
	run := func(args ...string) string {
		cmd := exec.Command(script, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "COLINDEX_BIN=" + binary(t)}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	require.Contains(t, run("start"), "1 collection to page")
	svc.waitIdle(time.Minute)
	require.Contains(t, run("status"), "1/1 collection complete")
	require.Contains(t, run("full"), `"imported": 1`)

}

func TestServeRefusesAnEmptyPasswordAndWarnsOnAShortOne(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary(t), "serve")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DATABASE_URL=postgres://127.0.0.1:1/none"}
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "RELAY_ADMIN_PASSWORD (or --admin-password) is required")

	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay, "RELAY_ADMIN_PASSWORD=short")
	svc.start()
	require.Contains(t, svc.logs.String(), "shorter than 16 characters")
	require.NotContains(t, svc.logs.String(), `"short"`, "the password itself is never logged")
}
