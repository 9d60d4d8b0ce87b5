package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runScript runs a copy of scripts/run.sh in a scratch checkout whose bin/colindex is a stub
// (it reports whether it got a password), with dotEnv as .env at mode (no .env when nil).
// It returns the output and the .env that results.
func runScript(t *testing.T, dotEnv []byte, mode os.FileMode) (out, env string, envMode os.FileMode) {
	t.Helper()
	root := t.TempDir()
	script, err := os.ReadFile("../../scripts/run.sh")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "scripts"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "scripts", "run.sh"), script, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "colindex"),
		[]byte("#!/bin/sh\n[ -n \"$RELAY_ADMIN_PASSWORD\" ] && echo \"stub got: $* with a password\"\n"), 0o755))
	path := filepath.Join(root, ".env")
	if dotEnv != nil {
		require.NoError(t, os.WriteFile(path, dotEnv, mode))
		require.NoError(t, os.Chmod(path, mode)) // WriteFile's mode passes through the umask
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "run.sh"), "--x")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	require.Contains(t, string(b), "stub got: serve --x with a password")
	st, err := os.Stat(path)
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b), string(got), st.Mode().Perm()
}

var generatedPassword = regexp.MustCompile(`(?m)^RELAY_ADMIN_PASSWORD=([0-9a-f]{48})$`)

// make run's .env holds the admin password: it ends up readable by its owner only, whether
// the script creates it, appends to an existing one, or finds one holding a password.
func TestRunScriptKeepsDotEnvPrivate(t *testing.T) {
	t.Parallel()

	// No .env: created at 600 with a fresh password that is never printed.
	out, env, mode := runScript(t, nil, 0)
	require.Equal(t, os.FileMode(0o600), mode)
	m := generatedPassword.FindStringSubmatch(env)
	require.NotNil(t, m, env)
	require.NotContains(t, out, m[1], "the password is never printed")

	// An existing world-readable .env without a password: the password is appended and
	// the file no longer keeps its old mode.
	out, env, mode = runScript(t, []byte("COLINDEX_LISTEN=:2510\n"), 0o644)
	require.Equal(t, os.FileMode(0o600), mode, "appending the password kept mode 644")
	require.Contains(t, env, "COLINDEX_LISTEN=:2510\n")
	m = generatedPassword.FindStringSubmatch(env)
	require.NotNil(t, m, env)
	require.NotContains(t, out, m[1])

	// An existing .env holding a password, readable by group or others: tightened, and said.
	for _, tc := range []struct {
		body string
		mode os.FileMode
	}{
		{"RELAY_ADMIN_PASSWORD=kept-as-it-is-0123456789\n", 0o640},
		{"export RELAY_ADMIN_PASSWORD=kept-as-it-is-0123456789\n", 0o604},
		{"ZLAY_ADMIN_PASSWORD=x\nRELAY_ADMIN_PASSWORD=kept-as-it-is-0123456789\n", 0o660},
	} {
		out, env, mode = runScript(t, []byte(tc.body), tc.mode)
		require.Equal(t, os.FileMode(0o600), mode, tc.body)
		require.Contains(t, out, "changed its mode to 600", tc.body)
		require.Equal(t, tc.body, env, "an existing password is kept")
		require.NotContains(t, out, "kept-as-it-is")
	}

	// Already private: left alone, nothing said.
	out, _, mode = runScript(t, []byte("RELAY_ADMIN_PASSWORD=kept-as-it-is-0123456789\n"), 0o600)
	require.Equal(t, os.FileMode(0o600), mode)
	require.NotContains(t, out, "changed its mode")
}

func TestAdminPasswordFromFlag(t *testing.T) {
	t.Parallel()
	const pw = "a-long-enough-password-123"
	for _, tc := range []struct {
		env  string
		args []string
		want bool
	}{
		{pw, []string{"serve"}, false},                                                 // the variable (or .env)
		{"", []string{"serve", "--admin-password", pw}, true},                          // the flag alone
		{"another-password-0123456", []string{"serve", "-admin-password=" + pw}, true}, // the flag wins
		{pw, []string{"serve", "--admin-password=" + pw}, true},                        // both, same value: still in ps
		{pw, []string{"serve", "--", "--admin-password"}, false},                       // not a flag after --
		{pw, []string{"serve", "--admin-password-file", "x"}, false},                   // another name
	} {
		require.Equal(t, tc.want, adminPasswordFromFlag(pw, tc.env, tc.args), "%q %q", tc.env, tc.args)
	}
}

// serve says so when the password came on the command line (visible in ps), and does not
// when it came from RELAY_ADMIN_PASSWORD. The database is unreachable: serve logs its
// warnings, then fails, which is all this needs.
func TestServeWarnsWhenThePasswordIsOnTheCommandLine(t *testing.T) {
	t.Parallel()
	const pw = "a-long-enough-password-123"
	run := func(env []string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary(t), append([]string{"serve"}, args...)...)
		cmd.Dir = t.TempDir() // no .env
		cmd.Env = append([]string{
			"PATH=" + os.Getenv("PATH"), "DATABASE_URL=postgres://127.0.0.1:1/none",
			"COLINDEX_LISTEN=127.0.0.1:0", "COLINDEX_INDEX_DIR=" + filepath.Join(t.TempDir(), "index"),
		}, env...)
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "serve ran without a database:\n%s", out)
		require.NoError(t, ctx.Err(), "serve did not exit:\n%s", out)
		require.NotContains(t, string(out), pw, "the password itself is never logged")
		return string(out)
	}
	out := run(nil, "--admin-password", pw)
	require.Contains(t, out, "given with --admin-password")
	require.Contains(t, out, "set RELAY_ADMIN_PASSWORD")

	out = run([]string{"RELAY_ADMIN_PASSWORD=" + pw})
	require.NotContains(t, out, "--admin-password")
	require.Contains(t, out, "127.0.0.1:1", "serve got as far as the database")
}
