package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/jobs"
)

func TestAdminRoutesRequireTheBearerToken(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testPassword))
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"none", nil},
		{"wrong token", []string{"Authorization: Bearer nope"}},
		{"token as prefix", []string{"Authorization: Bearer " + testPassword[:10]}},
		{"token with suffix", []string{"Authorization: Bearer " + testPassword + "x"}},
		{"no scheme", []string{"Authorization: " + testPassword}},
		{"basic is for browsers only", []string{basic}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				t.Parallel() // refused: changes nothing
				code, body := s.do(t, method, "/admin/backfill-collections", tc.header...)
				require.Equal(t, http.StatusUnauthorized, code)
				require.Contains(t, body, "Unauthorized")
			})
		}
	}
	code, body := s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = s.do(t, http.MethodGet, "/admin/backfill-collections", "Authorization: bearer "+testPassword)
	require.Equal(t, http.StatusOK, code, "the scheme is case-insensitive")
}

func TestRiverUIAcceptsBearerOrBasic(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	basic := func(user, pass string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, h := range [][]string{nil, {basic("admin", "wrong")}, {"Authorization: Bearer wrong"}} {
		t.Run(fmt.Sprintf("refused %q", h), func(t *testing.T) {
			t.Parallel()
			code, _ := s.do(t, http.MethodGet, "/riverui/", h...)
			require.Equal(t, http.StatusUnauthorized, code)
		})
	}
	for _, h := range []string{basic("admin", testPassword), basic("", testPassword), adminAuth} {
		t.Run(fmt.Sprintf("accepted %q", h), func(t *testing.T) {
			t.Parallel()
			code, body := s.do(t, http.MethodGet, "/riverui/", h)
			require.Equal(t, http.StatusOK, code)
			require.Contains(t, body, "<html")
		})
	}
}

func TestStartManyAtOnceGivesExactlyOne200(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	s := newStack(t, stackOpts{pagePause: 30 * time.Millisecond})
	relay.Append("com.example.slow", testrelay.DIDs("s", 70)...)
	require.NoError(t, s.index.Add("com.example.slow", testrelay.DIDs("s", 1)))

	const callers = 10
	codes := make([]int, callers)
	bodies := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = s.do(t, http.MethodPost, "/admin/backfill-collections?source="+url.QueryEscape(relay.URL), adminAuth)
		}()
	}
	wg.Wait()
	counts := map[int]int{}
	for i, c := range codes {
		counts[c]++
		if c == http.StatusConflict {
			require.Contains(t, bodies[i], "already running")
		}
	}
	require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusConflict: callers - 1}, counts, bodies)

	st := s.waitBackfillDone(t)
	require.EqualValues(t, 70, st.TotalImported)
	require.Equal(t, 1, st.Completed)
}

func TestBadSourceIs400AndTouchesNothing(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	s := newStack(t, stackOpts{lexiconListURL: relay.URL + "/llms.txt"})
	require.NoError(t, s.index.Add("com.example.x", testrelay.DIDs("x", 1)))
	long := "a"
	for len(long) < 400 {
		long += ".aaaaaaaa"
	}
	// A group: its parallel cases have all finished when it returns, before the checks below.
	t.Run("each is refused", func(t *testing.T) {
		for _, bad := range []string{
			"ftp://example.com", "file:///etc/passwd", "http://user:pw@example.com", "https://example.com/path",
			"https://example.com?q=1", "https://example.com#f", "exa mple.com", "example.com\x00", "example.com\n",
			"http://example.com:99999", "-bad-.com", "example..com", long, "javascript:alert(1)",
		} {
			t.Run(fmt.Sprintf("%.40q", bad), func(t *testing.T) {
				t.Parallel()
				code, body := s.do(t, http.MethodPost, "/admin/backfill-collections?source="+url.QueryEscape(bad), adminAuth)
				require.True(t, code == http.StatusBadRequest || code == http.StatusUnprocessableEntity, "%d %s", code, body)
				require.Contains(t, body, `"status"`, "problem+json")
			})
		}
	})
	_, body := s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
	var st jobs.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Zero(t, st.Total, "no progress row was written")
	require.Nil(t, st.LastRun)
	require.Zero(t, relay.Requests(), "nothing was fetched")
}

func TestHealthAnswers(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	code, body := s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok","postgres":"ok","index":"ok","ready":false,"backfill":"none"}`, body,
		"nothing backfilled: a standalone answers 200, not ready")

	s.setProgress(t, "com.example.done", true, false)
	code, body = s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"ok","postgres":"ok","index":"ok","ready":true,"backfill":"complete"}`, body)

	// A replica that is not ready keeps readers away: 503, starting.
	s.setProgress(t, "com.example.filling", false, false)
	s.srv.ReplicaOf = "http://peer.example:2510"
	code, body = s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"starting","postgres":"ok","index":"ok","ready":false,"backfill":"stopped",
		"replica_of":"http://peer.example:2510"}`, body)
	s.setProgress(t, "com.example.filling", true, false)
	code, body = s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"ready":true`)

	s.srv.Pool.Close()
	code, body = s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status":"error","postgres":"unreachable","index":"ok","ready":false,"backfill":"unknown",
		"replica_of":"http://peer.example:2510"}`, body)
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	code, body := s.do(t, http.MethodGet, "/openapi.json")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"operationId":"startBackfill"`)
	require.Contains(t, body, `"operationId":"getBackfillStatus"`)
	require.NotContains(t, body, "$schema\":{", "no $schema property in response bodies")
}

// Every operation the OpenAPI document marks as secured refuses requests without the token,
// and every operation but the named public ones is secured, so a new admin route cannot ship
// open by accident.
func TestEverySecuredOperationRefusesWithoutTheToken(t *testing.T) {
	// Each public operation with the query to call it with (listReposByCollection needs one).
	publicOperations := map[string]string{
		"GET /v1/listCollections": "", "GET /v1/collections": "", "GET /_health": "",
		"GET " + listReposPath: "?collection=app.bsky.feed.post",
	}
	t.Parallel()
	s := newStack(t, stackOpts{})
	oapi := s.srv.NewAPI(http.NewServeMux()).OpenAPI()
	secured := 0
	for path, item := range oapi.Paths {
		for method, op := range map[string]*huma.Operation{
			http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
			http.MethodDelete: item.Delete, http.MethodPatch: item.Patch,
		} {
			if op == nil {
				continue
			}
			query, public := publicOperations[method+" "+path]
			if !public {
				secured++
			}
			// Parallel: every request is unauthenticated or a public read, so none changes anything.
			t.Run(method+" "+path, func(t *testing.T) {
				t.Parallel()
				if public {
					require.Empty(t, op.Security, "public")
					code, body := s.do(t, method, path+query)
					require.Equal(t, http.StatusOK, code, body)
					return
				}
				require.NotEmpty(t, op.Security, "no security requirement")
				p := strings.ReplaceAll(path, "{collection}", "app.bsky.feed.post")
				for _, h := range [][]string{nil, {"Authorization: Bearer wrong"}} {
					code, _ := s.do(t, method, p, h...)
					require.Equal(t, http.StatusUnauthorized, code, "%v", h)
				}
			})
		}
	}
	require.GreaterOrEqual(t, secured, 8)
	code, _ := s.do(t, http.MethodGet, "/metrics")
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestMetricsMoveDuringABackfill(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	s := newStack(t, stackOpts{})
	relay.Append("com.example.m", testrelay.DIDs("m", 20)...)
	require.NoError(t, s.index.Add("com.example.m", testrelay.DIDs("m", 1)))

	scrape := func() string {
		code, body := s.do(t, http.MethodGet, "/metrics", adminAuth)
		require.Equal(t, http.StatusOK, code)
		return body
	}
	require.Zero(t, metricValue(t, scrape(), "colindex_backfill_pages_committed_total"), "the server's own metrics")
	code, body := s.do(t, http.MethodPost, "/admin/backfill-collections?source="+url.QueryEscape(relay.URL), adminAuth)
	require.Equal(t, http.StatusOK, code, body)
	s.waitBackfillDone(t)
	after := scrape()
	// Exactly this backfill: 20 DIDs at 7 a page are 3 pages (7, 7, 6), each one request.
	for name, want := range map[string]float64{
		"colindex_backfill_pages_committed_total":                                                     3,
		"colindex_backfill_dids_imported_total":                                                       20,
		`colindex_source_responses_total{code="200",method="com.atproto.sync.listReposByCollection"}`: 3,
		"colindex_backfill_page_duration_seconds_count":                                               3,
		"colindex_backfill_page_overhead_seconds_count":                                               3,
		"colindex_source_request_duration_seconds_count":                                              3,
	} {
		require.Equal(t, want, metricValue(t, after, name), name)
	}
	require.Positive(t, metricValue(t, after, "go_goroutines"), "the Go runtime's metrics are served too")
}

// metricValue reads one sample from a Prometheus text exposition.
func metricValue(t *testing.T, exposition, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err, line)
			return v
		}
	}
	return 0
}

func TestRepeatedWrongPasswordsAreSlowedDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{failedLogins: 3})
	for i := range 3 {
		code, _ := s.do(t, http.MethodGet, "/admin/backfill-collections", "Authorization: Bearer guess"+strconv.Itoa(i))
		require.Equal(t, http.StatusUnauthorized, code, "attempt %d", i)
	}
	// The allowance is spent: further wrong passwords wait, on every admin path.
	for _, path := range []string{"/admin/backfill-collections", "/riverui/", "/metrics"} {
		for _, h := range []string{"Authorization: Bearer guess-again", basicHeader("admin", "guess")} {
			s.requireSlowed(t, path, h)
		}
	}
	// The right password is not slowed, on any path and in either scheme it is accepted in.
	code, body := s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = s.do(t, http.MethodGet, "/riverui/", basicAuth)
	require.Equal(t, http.StatusOK, code)
	code, _ = s.do(t, http.MethodGet, "/metrics", adminAuth)
	require.Equal(t, http.StatusOK, code)
	// No credentials at all is a login prompt, not a guess.
	code, _ = s.do(t, http.MethodGet, "/riverui/")
	require.Equal(t, http.StatusUnauthorized, code)

	// The public endpoints are not affected.
	code, _ = s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusOK, code)
}

// Every way of getting the password wrong gets the same answer, so an answer tells a
// guesser nothing (the comparison itself hashes both sides and runs in constant time).
func TestWrongCredentialsAllLookTheSame(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	var bodies []string
	for _, h := range [][]string{
		nil, {"Authorization: Bearer x"}, {"Authorization: Bearer " + testPassword + "x"},
		{"Authorization: Bearer " + strings.Repeat("a", 4000)}, {"Authorization: Basic !!!"}, {"Authorization: Token " + testPassword},
	} {
		code, body := s.do(t, http.MethodGet, "/admin/backfill-collections", h...)
		require.Equal(t, http.StatusUnauthorized, code)
		bodies = append(bodies, body)
	}
	for _, b := range bodies[1:] {
		require.Equal(t, bodies[0], b)
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"192.0.2.7:4321":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":      "192.0.2.7",
		"not an address":             "not an address",
	} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, clientKey(addr))
		})
	}
}

// A refresh whose discovery cannot see every collection (here the source's collection list
// fails) is refused with 502 naming what failed, and starts nothing; the same start without
// refresh goes on as before.
func TestRefreshWithBlindDiscoveryIs502(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	listFails := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/listCollections" {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		relay.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(listFails.Close)
	s := newStack(t, stackOpts{})
	require.NoError(t, s.index.Add("com.example.x", testrelay.DIDs("x", 1)))
	code, body := s.do(t, http.MethodPost, "/admin/backfill-collections?refresh=true&source="+url.QueryEscape(listFails.URL), adminAuth)
	require.Equal(t, http.StatusBadGateway, code, body)
	require.Contains(t, body, "the source's collection list")
	_, body = s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
	var st jobs.Status
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Nil(t, st.LastRun, "nothing was started")
	code, body = s.do(t, http.MethodPost, "/admin/backfill-collections?source="+url.QueryEscape(listFails.URL), adminAuth)
	require.Equal(t, http.StatusOK, code, body)
}
