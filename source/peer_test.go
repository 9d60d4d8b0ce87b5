package source

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A source's collection list is read to its end by cursor; entries that are not NSIDs are
// left out; a source that serves none says so with ErrNoCollectionList; a cursor that does
// not move forward (a source that lies) is an error rather than a loop.
func TestCollectionsPagesTheSourcesList(t *testing.T) {
	t.Parallel()
	t.Run("paged to its end", func(t *testing.T) {
		t.Parallel()
		src := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/listCollections" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Query().Get("cursor") {
			case "":
				fmt.Fprint(w, `{"collections":{"app.bsky.feed.post":5,"not an nsid":1},"cursor":"app.bsky.feed.post"}`)
			case "app.bsky.feed.post":
				fmt.Fprint(w, `{"collections":{"com.example.z":1},"cursor":""}`)
			}
		})
		got, err := NewClient(0).Collections(context.Background(), src)
		require.NoError(t, err)
		require.Equal(t, []string{"app.bsky.feed.post", "com.example.z"}, got)
	})
	t.Run("not served", func(t *testing.T) {
		t.Parallel()
		src := serve(t, http.NotFound)
		_, err := NewClient(0).Collections(context.Background(), src)
		require.ErrorIs(t, err, ErrNoCollectionList)
	})
	t.Run("a cursor that does not move", func(t *testing.T) {
		t.Parallel()
		src := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"collections":{"com.example.a":1},"cursor":"com.example.a"}`)
		})
		_, err := NewClient(0).Collections(context.Background(), src)
		require.ErrorContains(t, err, "does not move past")
	})
	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		src := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, `<html>proxy error</html>`)
		})
		_, err := NewClient(0).Collections(context.Background(), src)
		require.ErrorContains(t, err, "text/html")
	})
}

// A peer's /_health is read whatever its status (a replica that is not ready answers 503
// with the same body); an answer that is not a colindex health is an error.
func TestHealthReadsAPeer(t *testing.T) {
	t.Parallel()
	src := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"starting","ready":false,"backfill":"running","firehose":{"url":"wss://relay.example","cursor":42,"caught_up":false}}`)
	})
	h, err := NewClient(0).Health(context.Background(), src)
	require.NoError(t, err)
	require.Equal(t, "starting", h.Status)
	require.EqualValues(t, 42, h.Firehose.Cursor)
	require.Equal(t, "wss://relay.example", h.Firehose.URL)

	notColindex := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	})
	_, err = NewClient(0).Health(context.Background(), notColindex)
	require.ErrorContains(t, err, "not a colindex health answer")
}
