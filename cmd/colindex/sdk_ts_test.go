package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// The generated TypeScript SDK (sdk/ts) is exercised against the real server: its node test
// suite runs with the server's URL and password.
func TestTypeScriptSDKAgainstARunningServer(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../sdk/ts")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "node_modules"))
	require.NoError(t, err, "sdk/ts has no node_modules: run make ts-deps (make test does)")

	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	svc.start()

	cmd := exec.Command("npm", "test", "--silent")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COLINDEX_URL="+svc.base, "COLINDEX_ADMIN_PASSWORD="+e2ePassword)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "# fail 0")
	require.Regexp(t, `# pass [1-9]`, string(out))
}
