package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/metrics"
)

// Get shares its host's hold with the pages: a 429 to a relay's getRepoStatus holds the
// backfill's pages of the same host, and its own next requests, without sending them; and it
// answers other statuses and bodies as they came.
func TestGetSharesTheHostsHoldWithThePages(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch hits.Add(1) {
		case 1:
			_, _ = w.Write([]byte(`{"did":"x"}`))
		case 2:
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			t.Errorf("a request during the hold: %s", r.URL)
		}
	}))
	t.Cleanup(srv.Close)
	src, err := Parse(srv.URL)
	require.NoError(t, err)
	m := metrics.New()
	c := NewClient(0, WithMetrics(m))
	ctx := context.Background()

	status, body, err := c.Get(ctx, src, "/xrpc/com.atproto.sync.getRepoStatus?did=x", 1<<10)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"did":"x"}`, string(body))

	_, _, err = c.Get(ctx, src, "/xrpc/com.atproto.sync.getRepoStatus?did=y", 1<<10)
	var limited *RateLimitedError
	require.True(t, errors.As(err, &limited), "%v", err)
	require.InDelta(t, 30, limited.Wait.Seconds(), 0.5)

	_, err = c.ListRepos(ctx, src, "a.b.c", "", 10)
	require.True(t, errors.As(err, &limited), "the pages of the same host wait too: %v", err)
	_, _, err = c.Get(ctx, src, "/xrpc/com.atproto.sync.listRepos", 1<<10)
	require.True(t, errors.As(err, &limited), "%v", err)
	require.EqualValues(t, 2, hits.Load())
	// The answers are counted by method: an operator sees what the sweeps take of the cap.
	require.Equal(t, 1.0, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.getRepoStatus", "200")))
	require.Equal(t, 1.0, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.getRepoStatus", "429")))
	require.Zero(t, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "200")))
}

// A request's metrics label is its XRPC method, and nothing a path can make up.
func TestXRPCMethodLabel(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/xrpc/com.atproto.sync.listRepos?limit=1000&cursor=x":          "com.atproto.sync.listRepos",
		"/xrpc/com.atproto.sync.getRepoStatus":                          "com.atproto.sync.getRepoStatus",
		"/xrpc/com.atproto.sync.listReposByCollection?collection=a.b.c": "com.atproto.sync.listReposByCollection",
		"/xrpc/":                         "other",
		"/xrpc/a/b":                      "other",
		"/xrpc/com.example.anything?x=1": "other",
		"/health":                        "other",
	} {
		require.Equal(t, want, xrpcMethod(path), path)
	}
}
