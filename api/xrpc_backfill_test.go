package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/source"
)

// listHeader returns the Colindex-Backfill header of one listReposByCollection answer.
func (s *stack) listHeader(t *testing.T, query string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.http.URL + "/xrpc/com.atproto.sync.listReposByCollection?" + query)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(source.BackfillHeader)
}

// setProgress writes a progress row as the backfill would leave it.
func (s *stack) setProgress(t *testing.T, collection string, completed, resetting bool) {
	t.Helper()
	_, err := s.srv.Pool.Exec(context.Background(), `
		INSERT INTO backfill_progress (collection, source, completed_at, resetting_since)
		VALUES ($1, 'bsky.network', CASE WHEN $2 THEN now() END, CASE WHEN $3 THEN now() END)
		ON CONFLICT (collection) DO UPDATE SET completed_at = EXCLUDED.completed_at,
			resetting_since = EXCLUDED.resetting_since`, collection, completed, resetting)
	require.NoError(t, err)
}

// Every page says whether this colindex has finished the collection: complete only when its
// progress row is completed and not being reset; incomplete when it is still paging or
// resetting; none when it has never been backfilled here (its DIDs come from the stream).
func TestListReposSaysWhetherTheBackfillIsComplete(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, c := range []string{"com.example.done", "com.example.filling", "com.example.resetting", "com.example.unknown"} {
		require.NoError(t, s.index.Add(c, testrelay.DIDs(c, 3)))
	}
	s.setProgress(t, "com.example.done", true, false)
	s.setProgress(t, "com.example.filling", false, false)
	s.setProgress(t, "com.example.resetting", true, true) // a reset marks the row complete while DIDs leave

	for coll, want := range map[string]string{
		"com.example.done":      "complete",
		"com.example.filling":   "incomplete",
		"com.example.resetting": "incomplete",
		"com.example.unknown":   "none", // DIDs in the index but no progress row
		"com.example.none":      "none",
	} {
		for _, query := range []string{"collection=" + coll, "collection=" + coll + "&limit=1&cursor=did:plc:a"} {
			code, got := s.listHeader(t, query)
			require.Equal(t, http.StatusOK, code, query)
			require.Equal(t, want, got, query)
		}
	}

	// The answer follows the row: the collection that was filling completes.
	s.setProgress(t, "com.example.filling", true, false)
	_, got := s.listHeader(t, "collection=com.example.filling")
	require.Equal(t, "complete", got)
}

// colindex → colindex: a downstream's source client takes the pages of a complete upstream
// collection and refuses those of one still filling, with source.ErrUpstreamIncomplete.
func TestDownstreamColindexRefusesAnUpstreamStillFilling(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	dids := testrelay.DIDs("u", 5)
	require.NoError(t, s.index.Add("com.example.done", dids))
	require.NoError(t, s.index.Add("com.example.filling", dids))
	s.setProgress(t, "com.example.done", true, false)
	s.setProgress(t, "com.example.filling", false, false)
	upstream, err := source.Parse(s.http.URL)
	require.NoError(t, err)
	client := source.NewClient(0)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		p, err := client.ListRepos(context.Background(), upstream, "com.example.done", cursor, 2)
		require.NoError(t, err)
		got = append(got, p.DIDs...)
		if p.Cursor == "" {
			break
		}
		cursor = p.Cursor
	}
	require.Equal(t, dids, got)

	_, err = client.ListRepos(context.Background(), upstream, "com.example.filling", "", 2)
	require.ErrorIs(t, err, source.ErrUpstreamIncomplete)
	require.ErrorContains(t, err, "retry once it completes")
}
