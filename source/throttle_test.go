package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/colindex/colindex/metrics"
)

func TestRetryAfterAndReset(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		header http.Header
		want   time.Duration
		ok     bool
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second, true},
		{http.Header{"Retry-After": {now.Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, 90 * time.Second, true},
		{http.Header{"Ratelimit-Reset": {strconv.FormatInt(now.Unix()+42, 10)}}, 42 * time.Second, true}, // atproto: unix time
		{http.Header{"Ratelimit-Reset": {"12"}}, 12 * time.Second, true},                                 // IETF draft: delta
		{http.Header{"Ratelimit-Reset": {strconv.FormatInt(now.Unix()-5, 10)}}, 0, true},                 // already past
		{http.Header{"Retry-After": {"soon"}}, 0, false},
		{http.Header{}, 0, false},
	} {
		t.Run(fmt.Sprint(tc.header), func(t *testing.T) {
			t.Parallel()
			got, ok := retryAfter(tc.header, now)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestPolicyRate(t *testing.T) {
	t.Parallel()
	r, ok := policyRate(http.Header{"Ratelimit-Policy": {"3000;w=300"}})
	require.True(t, ok)
	require.InDelta(t, 10.0, r, 1e-9)
	_, ok = policyRate(http.Header{"Ratelimit-Policy": {"3000"}})
	require.False(t, ok)
	_, ok = policyRate(http.Header{"Ratelimit-Policy": {"x;w=1"}})
	require.False(t, ok)
}

// A 429 holds every request to that source, as long as the source asked; a hold longer than
// a page job should wait comes back as RateLimitedError without a request being sent.
func TestTooManyRequestsHoldsTheWholeSource(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[]}`))
	}))
	t.Cleanup(srv.Close)
	src, err := Parse(srv.URL)
	require.NoError(t, err)
	m := metrics.New()
	c := NewClient(0, WithMetrics(m))

	_, err = c.ListRepos(context.Background(), src, "a.b.c", "", 10)
	var limited *RateLimitedError
	require.True(t, errors.As(err, &limited), "%v", err)
	require.InDelta(t, 30, limited.Wait.Seconds(), 0.5)

	// Another collection of the same source does not even send its request.
	_, err = c.ListRepos(context.Background(), src, "d.e.f", "", 10)
	require.True(t, errors.As(err, &limited), "%v", err)
	require.EqualValues(t, 1, hits.Load())

	// Once the hold has passed, paging goes on.
	th := c.throttle(src)
	th.mu.Lock()
	th.until = time.Now()
	th.mu.Unlock()
	_, err = c.ListRepos(context.Background(), src, "a.b.c", "", 10)
	require.NoError(t, err)

	// Two answers reached the client, a 429 and a 200; the held request is no response.
	require.Equal(t, 1.0, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "429")))
	require.Equal(t, 1.0, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "200")))
	require.Zero(t, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "error")))
	require.Equal(t, 1.0, metrics.Value(m.SourceThrottled))
}

func TestAdvertisedPolicyLowersButNeverRaisesTheRate(t *testing.T) {
	t.Parallel()
	th := newThrottle("s", 50, metrics.New().SourceThrottled)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Ratelimit-Policy": {"600;w=60"}}}
	th.observe(resp, time.Now())
	require.EqualValues(t, 10, th.limiter.Limit())

	resp.Header.Set("Ratelimit-Policy", "100000;w=1")
	th.observe(resp, time.Now())
	require.EqualValues(t, 50, th.limiter.Limit(), "never above the operator's cap")

	unlimited := newThrottle("s", 0, metrics.New().SourceThrottled)
	unlimited.observe(resp, time.Now())
	require.EqualValues(t, rate.Limit(100000), unlimited.limiter.Limit())
}

func TestExhaustedRemainingHoldsUntilReset(t *testing.T) {
	t.Parallel()
	th := newThrottle("s", 0, metrics.New().SourceThrottled)
	now := time.Now()
	hold := th.observe(&http.Response{StatusCode: 200, Header: http.Header{
		"Ratelimit-Remaining": {"0"}, "Ratelimit-Reset": {strconv.FormatInt(now.Unix()+20, 10)},
	}}, now)
	require.Greater(t, hold, 15*time.Second)
	err := th.wait(context.Background(), 0)
	var limited *RateLimitedError
	require.True(t, errors.As(err, &limited))
	require.Greater(t, limited.Wait, 15*time.Second)
}
