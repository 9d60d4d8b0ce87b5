package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// The lexicon list is fetched with the source client's HTTP client: a list host that
// redirects elsewhere (here another loopback port, in real life an internal address) is
// refused with a clear error, the target sees no request, and discovery goes on from the
// index. A redirect on the list's own origin is still followed.
func TestLexiconListRedirectToAnotherOriginIsRefused(t *testing.T) {
	t.Parallel()
	var inner atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.Add(1)
		_, _ = w.Write([]byte(testrelay.LexiconList("com.example.internal")))
	}))
	t.Cleanup(internal.Close)
	list := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away.txt":
			http.Redirect(w, r, internal.URL+"/llms.txt", http.StatusFound)
		case "/moved.txt":
			http.Redirect(w, r, "/llms.txt", http.StatusMovedPermanently)
		default:
			_, _ = w.Write([]byte(testrelay.LexiconList("com.example.listed")))
		}
	}))
	t.Cleanup(list.Close)

	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(index.Close)
	require.NoError(t, index.Add("com.example.indexed", []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}))

	client := source.NewClient(0).HTTP()
	d := &Discoverer{HTTP: client, LexiconListURL: list.URL + "/away.txt", Index: index}
	got := d.Discover(context.Background(), 0)
	require.Contains(t, got.LexiconListError, "redirect to another origin refused")
	require.Contains(t, got.LexiconListError, "redirected to http://"+internal.Listener.Addr().String())
	require.Zero(t, inner.Load(), "the redirect target received a request")
	require.Equal(t, []string{"com.example.indexed"}, got.Collections, "discovery goes on from the index")

	d.LexiconListURL = list.URL + "/moved.txt"
	got = d.Discover(context.Background(), 0)
	require.Empty(t, got.LexiconListError)
	require.Equal(t, []string{"com.example.indexed", "com.example.listed"}, got.Collections)
}
