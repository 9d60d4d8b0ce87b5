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

	for _, refused := range [][]string{{"incomplete"}, {" Incomplete "}, {"partial"}, {""}, {"complete", "incomplete"}, {"none"}} {
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

// A replica accepts its peer's pages of collections the peer never backfilled
// (Colindex-Backfill: none): its own stream starts from the peer's cursor. Any other client,
// and the replica with any other source, refuses them; incomplete stays refused.
func TestAReplicaAcceptsItsPeersStreamOnlyCollections(t *testing.T) {
	t.Parallel()
	withState := func(state string) Source {
		return serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(BackfillHeader, state)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:a"}]}`))
		})
	}
	peerNone, peerIncomplete, otherNone := withState("none"), withState("incomplete"), withState("none")
	replica := NewClient(0)
	replica.ReplicaOf(peerNone)
	fetch := func(c *Client, src Source) error {
		_, err := c.ListRepos(context.Background(), src, "com.example.a", "", 10)
		return err
	}
	require.NoError(t, fetch(replica, peerNone), "the replica takes its peer's stream-only collection")
	require.ErrorIs(t, fetch(replica, otherNone), ErrUpstreamIncomplete, "not from another colindex")
	require.ErrorIs(t, fetch(NewClient(0), peerNone), ErrUpstreamIncomplete, "not for a client that is no replica")
	replica.ReplicaOf(peerIncomplete)
	require.ErrorIs(t, fetch(replica, peerIncomplete), ErrUpstreamIncomplete, "incomplete stays refused")
}
