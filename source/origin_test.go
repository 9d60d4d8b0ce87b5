package source

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// A source that 302s to another server (another port on the same loopback address) must not
// get colindex to call it: the page fails naming the refused redirect, and the second
// server sees no request at all.
func TestCrossOriginRedirectIsRefused(t *testing.T) {
	t.Parallel()
	var inner atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:internal"}]}`))
	}))
	t.Cleanup(internal.Close)
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+r.URL.RequestURI(), http.StatusFound)
	})

	_, err := NewClient(0).ListRepos(context.Background(), src, "a.b.c", "", 10)
	require.ErrorIs(t, err, ErrCrossHostRedirect)
	require.ErrorContains(t, err, "redirected to "+origin(mustURL(t, internal.URL)))
	require.Zero(t, inner.Load(), "the redirect target received a request")
}

// A redirect on the source's own origin is still followed, but not forever.
func TestSameOriginRedirectIsFollowedAndBounded(t *testing.T) {
	t.Parallel()
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("moved") == "" {
			http.Redirect(w, r, r.URL.RequestURI()+"&moved=1", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:a"}]}`))
	})
	p, err := NewClient(0).ListRepos(context.Background(), src, "a.b.c", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"did:plc:a"}, p.DIDs)

	var hits atomic.Int32
	loop := serve(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, r.URL.RequestURI(), http.StatusFound)
	})
	_, err = NewClient(0).ListRepos(context.Background(), loop, "a.b.c", "", 10)
	require.ErrorContains(t, err, "stopped after 5 redirects")
	require.EqualValues(t, maxRedirects, hits.Load())
}

func TestOriginMakesDefaultPortsExplicit(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://bsky.network":        "https://bsky.network:443",
		"HTTPS://BSKY.network:443/x":  "https://bsky.network:443",
		"http://bsky.network":         "http://bsky.network:80",
		"http://bsky.network:80":      "http://bsky.network:80",
		"http://bsky.network:8080":    "http://bsky.network:8080",
		"http://[::1]:2510/xrpc":      "http://[::1]:2510",
		"http://[::1]":                "http://[::1]:80",
		"https://bsky.network:80/?q=": "https://bsky.network:80",
	} {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, want, origin(mustURL(t, raw)))
		})
	}
	// A downgrade to http on the same host is another origin.
	require.NotEqual(t, origin(mustURL(t, "https://h.example")), origin(mustURL(t, "http://h.example")))
}

// However the operator spells one server, its requests share one rate cap.
func TestRateCapIsSharedByEverySpellingOfASource(t *testing.T) {
	t.Parallel()
	c := NewClient(2)
	var spellings []*throttle
	for _, raw := range []string{"bsky.network", "https://bsky.network", "https://bsky.network:443", "HTTPS://BSKY.NETWORK:443/"} {
		src, err := Parse(raw)
		require.NoError(t, err)
		spellings = append(spellings, c.throttle(src))
	}
	for i, th := range spellings[1:] {
		require.Same(t, spellings[0], th, "spelling %d has its own bucket", i+1)
	}
	// The token one spelling takes is gone for the others.
	require.True(t, spellings[0].limiter.Allow())
	require.False(t, spellings[2].limiter.Allow(), "a second bucket let a request through")

	for _, other := range []string{"http://bsky.network", "https://bsky.network:8443", "api.bsky.network"} {
		src, err := Parse(other)
		require.NoError(t, err)
		require.NotSame(t, spellings[0], c.throttle(src), other)
	}
	// http's default port too.
	a, _ := Parse("http://127.0.0.1")
	b, _ := Parse("http://127.0.0.1:80")
	require.Same(t, c.throttle(a), c.throttle(b))
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// The refusal must read as a refusal, whatever wraps it (net/http wraps it in *url.Error).
func TestCrossOriginRedirectErrorIsClear(t *testing.T) {
	t.Parallel()
	via := []*http.Request{{URL: mustURL(t, "https://source.example/xrpc/x?collection=a")}}
	err := CheckRedirect(&http.Request{URL: mustURL(t, "http://169.254.169.254/latest")}, via)
	require.True(t, errors.Is(err, ErrCrossHostRedirect))
	require.True(t, strings.Contains(err.Error(), "https://source.example:443 redirected to http://169.254.169.254:80"), err.Error())
	require.NoError(t, CheckRedirect(&http.Request{URL: mustURL(t, "https://SOURCE.example:443/other")}, via))
}
