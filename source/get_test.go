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
	c := NewClient(0, WithMetrics(metrics.New()))
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
}
