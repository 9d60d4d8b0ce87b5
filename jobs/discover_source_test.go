package jobs

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// A source that serves a collection list (a colindex peer, collectiondir) adds its collections
// to discovery; one that serves none (bsky.network's relay) is no error; one whose list fails
// leaves its error and discovery goes on with the rest.
func TestDiscoveryReadsTheSourcesOwnList(t *testing.T) {
	t.Parallel()
	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(index.Close)
	require.NoError(t, index.Add("com.example.indexed", []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}))
	d := &Discoverer{Index: index, Source: source.NewClient(0)}
	serve := func(h http.HandlerFunc) source.Source {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		src, err := source.Parse(srv.URL)
		require.NoError(t, err)
		return src
	}

	t.Run("a list", func(t *testing.T) {
		t.Parallel()
		src := serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"collections":{"com.example.peer":3,"com.example.indexed":1}}`)
		})
		got := d.DiscoverFrom(context.Background(), src, 0)
		require.Equal(t, []string{"com.example.indexed", "com.example.peer"}, got.Collections)
		require.Equal(t, 2, got.FromSource)
		require.Empty(t, got.SourceListError)
	})
	t.Run("no list", func(t *testing.T) {
		t.Parallel()
		got := d.DiscoverFrom(context.Background(), serve(http.NotFound), 0)
		require.Equal(t, []string{"com.example.indexed"}, got.Collections)
		require.Empty(t, got.SourceListError)
	})
	t.Run("a list that fails", func(t *testing.T) {
		t.Parallel()
		src := serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>bad gateway</html>")
		})
		got := d.DiscoverFrom(context.Background(), src, 0)
		require.Equal(t, []string{"com.example.indexed"}, got.Collections)
		require.Contains(t, got.SourceListError, "text/html")
	})
}
