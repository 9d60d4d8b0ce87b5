package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// The operator's first hour, through the built binary: the CLI finds a server moved with
// COLINDEX_LISTEN, reads the .env make run writes, and --watch reports progress into a pipe.

// cliIn runs the binary at bin in dir with exactly env (none when nil, not the test's), like
// (*service).cli.
func cliIn(t *testing.T, bin, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{}, env...) // nil would mean the test's own environment
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCLIFindsTheServerFromCOLINDEX_LISTEN(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(svc.base, "http://"))
	require.NoError(t, err)
	// The server listens on every interface, as ":PORT" says; its .env is all the CLI gets.
	svc.env = append(svc.env, "COLINDEX_LISTEN=:"+port)
	svc.start()

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"),
		[]byte("COLINDEX_LISTEN=:"+port+"\nRELAY_ADMIN_PASSWORD="+e2ePassword+"\n"), 0o600))
	out, err := cliIn(t, binary(t), dir, nil, "status")
	require.NoError(t, err, "the CLI called http://127.0.0.1:%s, from COLINDEX_LISTEN, with RELAY_ADMIN_PASSWORD:\n%s", port, out)
	require.Contains(t, out, "backfill idle: 0/0 collections complete")

	// An empty COLINDEX_ADMIN_PASSWORD (a template's blank line) does not hide make run's
	// RELAY_ADMIN_PASSWORD, nor an empty COLINDEX_URL the derived URL.
	out, err = cliIn(t, binary(t), dir, []string{"COLINDEX_ADMIN_PASSWORD=", "COLINDEX_URL="}, "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "backfill idle")

	// COLINDEX_URL still wins over COLINDEX_LISTEN.
	out, err = cliIn(t, binary(t), dir, []string{"COLINDEX_URL=http://127.0.0.1:1"}, "status")
	require.Error(t, err)
	require.Contains(t, out, "cannot reach colindex at http://127.0.0.1:1:")

	// A derived URL that reaches nothing says where it came from.
	out, err = cliIn(t, binary(t), t.TempDir(), []string{"COLINDEX_LISTEN=0.0.0.0:1", "COLINDEX_ADMIN_PASSWORD=x"}, "status")
	require.Error(t, err)
	require.Contains(t, out, "cannot reach colindex at http://127.0.0.1:1 (from COLINDEX_LISTEN=0.0.0.0:1;")

	// Without any password the error names all three variables, make run's included.
	out, err = cliIn(t, binary(t), t.TempDir(), nil, "status")
	require.Error(t, err)
	require.Contains(t, out, "COLINDEX_ADMIN_PASSWORD, ZLAY_ADMIN_PASSWORD, RELAY_ADMIN_PASSWORD")
}

func TestCLIReadsTheDotEnvBesideItsBinDirectory(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	svc.start()

	// A checkout as make run leaves it: bin/colindex and .env beside bin/.
	checkout := t.TempDir()
	bin := filepath.Join(checkout, "bin", "colindex")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	exe, err := os.ReadFile(binary(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, exe, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(checkout, ".env"),
		[]byte("COLINDEX_URL="+svc.base+"\nRELAY_ADMIN_PASSWORD="+e2ePassword+"\n"), 0o600))

	// From another directory with no .env, the checkout's is read.
	elsewhere := t.TempDir()
	out, err := cliIn(t, bin, elsewhere, nil, "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "backfill idle")

	// The environment wins over that .env: the wrong password is the one sent.
	out, err = cliIn(t, bin, elsewhere, []string{"RELAY_ADMIN_PASSWORD=wrong"}, "status")
	require.Error(t, err)
	require.Contains(t, out, "refused the admin password (401), taken from RELAY_ADMIN_PASSWORD")

	// Only a bin directory's parent is looked in: the same binary elsewhere reads nothing.
	notBin := filepath.Join(checkout, "tools", "colindex")
	require.NoError(t, os.MkdirAll(filepath.Dir(notBin), 0o755))
	require.NoError(t, os.WriteFile(notBin, exe, 0o755))
	out, err = cliIn(t, notBin, elsewhere, nil, "status")
	require.Error(t, err)
	require.Contains(t, out, "no admin password")

	// A .env in the working directory is the only one read: it names the server but no
	// password, and the checkout's password is not used.
	require.NoError(t, os.WriteFile(filepath.Join(elsewhere, ".env"), []byte("COLINDEX_URL="+svc.base+"\n"), 0o600))
	out, err = cliIn(t, bin, elsewhere, nil, "status")
	require.Error(t, err)
	require.Contains(t, out, "no admin password")
}

func TestCLIWatchReportsIntoAPipeWhileItRuns(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := networkShaped(relay, 6, 400)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))
	// 40 pages of the largest collection 200 ms apart: the run cannot end before the pause.
	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=10", "COLINDEX_PAGE_PAUSE=200ms")
	svc.start()
	env := svc.adminEnv()

	out, err := svc.cli(t, env, "start")
	require.NoError(t, err, out)
	require.Contains(t, out, "6 collections to page")
	out, err = svc.cli(t, env, "pause")
	require.NoError(t, err, out)

	cmd := exec.Command(binary(t), "status", "--watch", "--interval", "100ms")
	cmd.Dir = t.TempDir()
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr logBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "watch ended early; stderr: %s", stderr.String())
			return l
		case <-time.After(30 * time.Second):
			require.FailNow(t, "no line from status --watch within 30 s")
			return ""
		}
	}

	// While paused the run cannot end, so these lines arrive while it is live (mpb's bars
	// printed nothing into a pipe until the end), one per interval, saying "paused".
	progress := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d collections [0-5]/6 complete, [\d,]+ DIDs?(, [\d,]+ DIDs/s)?, paused$`)
	first, second := next(), next()
	require.Regexp(t, progress, first)
	require.Regexp(t, progress, second)
	require.Contains(t, second, "DIDs/s", "from the second line on, the rate since the line before")

	// Cancelling ends the watch with the summary: cancelled, what is left, how to go on.
	out, err = svc.cli(t, env, "cancel")
	require.NoError(t, err, out)
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	require.NoError(t, cmd.Wait(), stderr.String())
	summary := strings.Join(rest, "\n")
	// Still paused, so the summary says that too.
	require.Regexp(t, regexp.MustCompile("backfill idle \\(last run cancelled; paging paused: `colindex resume`\\): [0-5]/6 collections complete, [1-6] incomplete, [\\d,]+ DIDs? imported — `colindex start` resumes it"), summary)
	require.Contains(t, summary, "(cancelled)")

	// And it does: resume paging, start again, and every collection completes.
	for _, args := range [][]string{{"resume"}, {"start"}} {
		out, err = svc.cli(t, env, args...)
		require.NoError(t, err, out)
	}
	st := svc.waitIdle(time.Minute)
	require.Equal(t, 6, st.Completed)
}
