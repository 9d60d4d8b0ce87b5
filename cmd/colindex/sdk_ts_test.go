package main

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// The generated TypeScript SDK (sdk/ts) is exercised against the real server: its node test
// suite runs with the server's URL and password, and with the DIDs each listRepos read must
// return from an index this test backfilled.
func TestTypeScriptSDKAgainstARunningServer(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../../sdk/ts")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "node_modules"))
	require.NoError(t, err, "sdk/ts has no node_modules: run make ts-deps (make test does)")

	relay := testrelay.New()
	t.Cleanup(relay.Close)
	a := append(testrelay.DIDs("tsa", 60), testrelay.DIDs("tsboth", 25)...)
	b := append(testrelay.DIDs("tsb", 30), testrelay.DIDs("tsboth", 25)...)
	slices.Reverse(a) // served out of DID order; read back in it
	relay.Append("com.example.sdk.a", a...)
	relay.Append("com.example.sdk.b", b...)
	relay.SetLLMsTxt(testrelay.LexiconList("com.example.sdk.a", "com.example.sdk.b"))
	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=20", "COLINDEX_PAGE_PAUSE=0s")
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	st := svc.waitIdle(time.Minute)
	require.Equal(t, 2, st.Completed)

	type readerCase struct {
		Collections []string `json:"collections"`
		DIDs        []string `json:"dids"`
	}
	cases := []readerCase{
		{[]string{"com.example.sdk.a"}, slices.Sorted(slices.Values(a))},
		{[]string{"com.example.sdk.a", "com.example.sdk.b"}, slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))},
	}
	require.Len(t, cases[1].DIDs, 60+30+25)
	casesFile := filepath.Join(t.TempDir(), "reader-cases.json")
	raw, err := json.Marshal(cases)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(casesFile, raw, 0o600))

	cmd := exec.Command("npm", "test", "--silent")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COLINDEX_URL="+svc.base, "COLINDEX_ADMIN_PASSWORD="+e2ePassword,
		"COLINDEX_READER_CASES="+casesFile)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "# fail 0")
	require.Regexp(t, `# pass [1-9]`, string(out))
	require.Contains(t, string(out), "listRepos pages each collection", "the reader's tests ran")
}

// The SDK README's example, as it is, from a separate npm project that installs the SDK from a
// fresh copy of the checkout (no node_modules, no dist: npm builds it on install), against a
// real server whose backfill source is a loopback relay, never bsky.network.
func TestTypeScriptSDKREADMEExample(t *testing.T) {
	t.Parallel()
	sdk, err := filepath.Abs("../../sdk/ts")
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(sdk, "README.md"))
	require.NoError(t, err)
	example := readmeExample(t, string(readme))
	require.NotContains(t, example, "bsky.network")

	// A copy of sdk/ts as a fresh clone has it (the test must not rebuild the dist/ other
	// tests use).
	checkout := filepath.Join(t.TempDir(), "colindex", "sdk", "ts")
	copyTree(t, sdk, checkout, "node_modules", "dist")

	// Where the example's backfill must come from, and a decoy as the server's default source.
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	bench := testrelay.DIDs("bench", 2345)
	slices.Reverse(bench)
	relay.Append("com.bench.c0000", bench...)
	relay.Append("com.bench.c0001", testrelay.DIDs("other", 10)...)
	relay.SetLLMsTxt(testrelay.LexiconList("com.bench.c0000", "com.bench.c0001"))
	decoy := testrelay.New()
	t.Cleanup(decoy.Close)
	svc := newService(t, relay, "COLINDEX_DEFAULT_SOURCE="+decoy.URL, "COLINDEX_PAGE_LIMIT=500", "COLINDEX_PAGE_PAUSE=0s")
	svc.start()

	project := filepath.Join(t.TempDir(), "my-project")
	require.NoError(t, os.MkdirAll(project, 0o755))
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(project, name), []byte(body), 0o644))
	}
	write("package.json", `{"name": "readme-example", "private": true, "type": "module"}`)
	write("tsconfig.json", `{"compilerOptions": {"target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
	  "strict": true, "types": ["node"], "skipLibCheck": true}, "files": ["example.ts"]}`)
	write("example.ts", example)
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(sdk, "package.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &pkg))
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = project
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
		return string(out)
	}
	// As the README says: npm install ../colindex/sdk/ts. The project's own TypeScript (the
	// SDK's versions) typechecks the example against the installed package's types.
	run(nil, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline", checkout)
	run(nil, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--save-dev",
		"typescript@"+pkg.DevDependencies["typescript"], "@types/node@"+pkg.DevDependencies["@types/node"])
	_, err = os.Stat(filepath.Join(checkout, "dist", "src", "index.js"))
	require.NoError(t, err, "installing built the SDK's dist/")
	run(nil, "node", "node_modules/typescript/bin/tsc", "-p", ".")

	out := run([]string{"COLINDEX_URL=" + svc.base, "RELAY_ADMIN_PASSWORD=" + e2ePassword, "BACKFILL_SOURCE=" + relay.URL},
		"node", "example.js")
	slices.Sort(bench)
	require.Contains(t, out, "0/0 collections complete\n")
	require.Contains(t, out, "pages 2 collections\n")
	require.Contains(t, out, strings.Join(bench[:3], "\n")+"\n", "the first DIDs, in DID order")
	require.Contains(t, out, "com.bench.c0000: 2345 DIDs\n", "the whole collection, read to its end")
	require.Zero(t, decoy.Requests(), "the example's source was used, not the server's default")
	st, _ := svc.status()
	require.Equal(t, 2, st.Completed)
	for _, c := range st.Collections {
		require.Equal(t, relay.URL, c.Source)
	}
}

// readmeExample returns the first ```ts block after the README's "## Use" heading.
func readmeExample(t *testing.T, readme string) string {
	t.Helper()
	_, use, ok := strings.Cut(readme, "\n## Use\n")
	require.True(t, ok, "sdk/ts/README.md has a ## Use section")
	_, block, ok := strings.Cut(use, "\n```ts\n")
	require.True(t, ok, "## Use has a ```ts block")
	code, _, ok := strings.Cut(block, "\n```\n")
	require.True(t, ok, "the ```ts block ends")
	return code + "\n"
}

// copyTree copies the regular files under src to dst, skipping directories named in skip.
func copyTree(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if slices.Contains(skip, d.Name()) {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(d.Name(), ".tgz") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	require.NoError(t, err)
}
