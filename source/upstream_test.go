package source

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A colindex upstream that has not finished the collection could add DIDs behind the
// cursor; its pages are refused with ErrUpstreamIncomplete. A complete upstream, and any
// source that sends no such header (bsky.network), pages as before.
func TestPagesFromAnIncompleteUpstreamColindexAreRefused(t *testing.T) {
	t.Parallel()
	page := func(header ...string) (Page, error) {
		src := serve(t, func(w http.ResponseWriter, r *http.Request) {
			for _, v := range header {
				w.Header().Add(BackfillHeader, v)
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:a"}],"cursor":"did:plc:a"}`))
		})
		return NewClient(0).ListRepos(context.Background(), src, "com.example.a", "", 10)
	}

	for _, refused := range [][]string{{"incomplete"}, {" Incomplete "}, {"partial"}, {""}, {"complete", "incomplete"}} {
		_, err := page(refused...)
		require.ErrorIs(t, err, ErrUpstreamIncomplete, "%q", refused)
		require.ErrorContains(t, err, "has not finished backfilling this collection", "%q", refused)
		require.ErrorContains(t, err, "com.example.a")
	}
	for _, accepted := range [][]string{nil, {"complete"}, {"Complete"}, {"complete; v=1"}} {
		p, err := page(accepted...)
		require.NoError(t, err, "%q", accepted)
		require.Equal(t, []string{"did:plc:a"}, p.DIDs)
		require.Equal(t, "did:plc:a", p.Cursor)
	}
}
