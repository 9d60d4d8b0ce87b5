package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func serve(t *testing.T, h http.HandlerFunc) Source {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	src, err := Parse(srv.URL)
	require.NoError(t, err)
	return src
}

func TestListReposSendsTheXRPCQuery(t *testing.T) {
	t.Parallel()
	var got string
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.String()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:a"}],"cursor":"next"}`))
	})
	p, err := NewClient(0).ListRepos(context.Background(), src, "app.bsky.feed.post", "c+/=", 1000)
	require.NoError(t, err)
	require.Equal(t, "next", p.Cursor)
	require.Equal(t, "/xrpc/com.atproto.sync.listReposByCollection?collection=app.bsky.feed.post&cursor=c%2B%2F%3D&limit=1000", got)
}

func TestListReposTurnsErrorsIntoErrors(t *testing.T) {
	t.Parallel()
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"BadRequest","message":"invalid collection"}`))
	})
	_, err := NewClient(0).ListRepos(context.Background(), src, "x", "", 10)
	var xe *XRPCError
	require.True(t, errors.As(err, &xe))
	require.Equal(t, 400, xe.Status)
	require.Equal(t, "BadRequest", xe.Name)
	require.Contains(t, err.Error(), "invalid collection")
}

func TestListReposRefusesOversizedBodies(t *testing.T) {
	t.Parallel()
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[` + strings.Repeat(`{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},`, MaxPageBytes/40) + `{"did":"x"}]}`))
	})
	// 32 MiB through the race detector on a loaded machine can outlast RequestTimeout; the
	// cap is under test here, not the timeout (TestListReposGivesUpOnABodyThatNeverEnds).
	c := NewClient(0)
	c.http.Timeout = 2 * time.Minute
	_, err := c.ListRepos(context.Background(), src, "x", "", 10)
	require.ErrorContains(t, err, "larger than")
}

func TestRateCapIsOneLimiterPerSource(t *testing.T) {
	t.Parallel()
	c := NewClient(20)
	a, err := Parse("a.example")
	require.NoError(t, err)
	b, err := Parse("http://127.0.0.1:1")
	require.NoError(t, err)
	la := c.throttle(a).limiter
	require.Same(t, la, c.throttle(a).limiter, "all workers share one limiter per source")
	require.NotSame(t, la, c.throttle(b).limiter)
	require.EqualValues(t, 20, la.Limit())
	require.Equal(t, 1, la.Burst(), "no bursts above the cap")

	require.Equal(t, rate.Inf, NewClient(0).throttle(a).limiter.Limit(), "0 means no cap")
}

func TestListReposRefusesWhatIsNotAPage(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]http.HandlerFunc{
		"html error page": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte(`<html>gateway timeout</html>`))
		},
		"JSON with a wrong content type": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(`{"repos":[]}`))
		},
		"truncated": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},{"did":"did:pl`))
		},
		"not an object": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]`))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := serve(t, h)
			_, err := NewClient(0).ListRepos(context.Background(), src, "a.b.c", "", 10)
			require.ErrorIs(t, err, ErrMalformedPage)
		})
	}
}

func TestListReposGivesUpOnABodyThatNeverEnds(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[`))
		w.(http.Flusher).Flush()
		<-stop // never finishes the body
	})
	t.Cleanup(func() { close(stop) }) // before the server's own cleanup, which waits for this handler
	c := NewClient(0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.ListRepos(ctx, src, "a.b.c", "", 10)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
