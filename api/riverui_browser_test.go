package api

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// chromiumPath is Debian's chromium, which make test installs.
const chromiumPath = "/usr/bin/chromium"

// TestRiverUIRendersInChromium opens River UI's jobs page in headless Chromium, logged in with
// HTTP Basic as a browser would be, and checks that the backfill's jobs are listed. The
// screenshot is kept in test-artifacts/ (or $COLINDEX_ARTIFACT_DIR).
func TestRiverUIRendersInChromium(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	s := newStack(t, stackOpts{})
	relay.Append("com.example.ui", testrelay.DIDs("u", 30)...)
	require.NoError(t, s.index.Add("com.example.ui", testrelay.DIDs("u", 1)))
	code, body := s.do(t, http.MethodPost, "/admin/backfill-collections?source="+url.QueryEscape(relay.URL), adminAuth)
	require.Equal(t, http.StatusOK, code, body)

	ctx := newChromium(t)

	// Without credentials the page is refused: the server's Basic challenge cannot be
	// answered by a headless browser, which reports it as a failed authentication.
	_, err := chromedp.RunResponse(ctx, chromedp.Navigate(s.http.URL+"/riverui/"))
	require.ErrorContains(t, err, "ERR_INVALID_AUTH_CREDENTIALS")

	// With the admin password, as a browser sends it after the Basic prompt, the jobs list
	// renders the backfill's jobs.
	withBasicLogin(t, ctx)
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(s.http.URL+"/riverui/jobs?state=completed"))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`//*[contains(text(), "backfill_page")]`)))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	require.NoError(t, err)
	require.Contains(t, text, "backfill_page")
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	require.NoError(t, err)

	dir := os.Getenv("COLINDEX_ARTIFACT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "riverui-jobs.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("River UI screenshot: %s (%d bytes)", path, len(shot))
}
