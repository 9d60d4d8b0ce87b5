package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

// newChromium starts headless Chromium for one test and returns its context.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	_, err := os.Stat(chromiumPath)
	require.NoError(t, err, "Chromium is needed for this test: run make deps (make test does)")
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// withBasicLogin makes the tab send the admin's Basic login on every request, as a browser
// does once the admin has logged into River UI: the credentials a forged request rides on.
func withBasicLogin(t *testing.T, ctx context.Context) {
	t.Helper()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testPassword))
	require.NoError(t, chromedp.Do(ctx, chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": basic},
		})
		return chromedp.Void{}, err
	})))
}

// TestRiverUICrossSiteFormIsRefusedInChromium replays the reported attack in a real browser: a
// page on another site submits a text/plain form whose body is River UI's cancel request,
// while the browser holds the admin's login. Chromium adds its own Origin and Sec-Fetch-Site;
// the request must be refused and the job must stay. Then River UI's own page, in the same
// browser, cancels a job the way its frontend does (fetch with a JSON string body and no
// Content-Type), which must still work.
func TestRiverUICrossSiteFormIsRefusedInChromium(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	victim := scheduledJob(t, s, "com.example.victim")
	own := scheduledJob(t, s, "com.example.own")

	// The form's one field is named `{"ids":["ID"],"x":"` with the value `"}`: text/plain
	// encoding joins them with "=", which makes the body valid JSON.
	target := s.http.URL + "/riverui/api/jobs/cancel"
	name := `{"ids":["` + strconv.FormatInt(victim, 10) + `"],"x":"`
	page := fmt.Sprintf(`<!doctype html><form method="POST" enctype="text/plain" action="%s">`+
		`<input type="hidden" name="%s" value='"}'><button id="go">win a prize</button></form>`,
		html.EscapeString(target), html.EscapeString(name))
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(evil.Close)
	// localhost is another site than 127.0.0.1, where River UI is served.
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)

	ctx := newChromium(t)
	withBasicLogin(t, ctx)
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(evilURL))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#go")))
	require.NoError(t, err)
	require.Equal(t, target, resp.URL, "the form was submitted to River UI")
	require.EqualValues(t, http.StatusForbidden, resp.Status)
	require.Equal(t, rivertype.JobStateScheduled, jobState(t, s, victim), "the forged cancel did nothing")

	// River UI's own page: its API client posts JSON.stringify(...) with only an Accept header,
	// so the browser labels the body text/plain;charset=UTF-8, the same type as the form.
	resp, err = chromedp.RunResponse(ctx, chromedp.Navigate(s.http.URL+"/riverui/"))
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.Status)
	contentType, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`new Request("/", {method: "POST", body: "{}"}).headers.get("Content-Type")`))
	require.NoError(t, err)
	require.Equal(t, "text/plain;charset=UTF-8", contentType)
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf(`fetch("/riverui/api/jobs/cancel", {
		method: "POST", body: JSON.stringify({ids: ["%d"]}), headers: new Headers({Accept: "application/json"}),
	}).then(r => r.status)`, own), chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, rivertype.JobStateCancelled, jobState(t, s, own))
}
