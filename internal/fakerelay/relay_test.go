package fakerelay

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// The commits are real sync-1.1 commits: signed, and carrying the MST nodes that let a
// consumer invert every op (creates, updates and deletes) back onto prevData.
func TestCommitsVerifyAndInvert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, err := NewAccount("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	require.NoError(t, err)
	pub, err := a.PublicKey()
	require.NoError(t, err)
	batches := [][]Op{
		{Create("app.bsky.feed.post", "3k2a"), Create("app.bsky.feed.like", "3k2b")},
		{Create("app.bsky.feed.post", "3k2c"), Update("app.bsky.feed.like", "3k2b")},
		{Delete("app.bsky.feed.post", "3k2a")},
		{Delete("app.bsky.feed.post", "3k2c"), Create("com.example.thing", "self")},
	}
	for i := range 40 { // enough keys for a multi-level tree
		batches = append(batches, []Op{Create("app.bsky.graph.follow", "3k"+string(rune('a'+i%26))+string(rune('a'+i/26)))})
	}
	for i, ops := range batches {
		evt, err := a.Commit(ops...)
		require.NoError(t, err, "batch %d", i)
		_, err = repo.VerifyCommitMessage(ctx, evt)
		require.NoError(t, err, "batch %d", i)
		commit, _, err := repo.LoadCommitFromCAR(ctx, bytes.NewReader(evt.Blocks))
		require.NoError(t, err)
		require.NoError(t, commit.VerifySignature(pub))
	}
}

// A consumer that asks for a cursor gets everything after it, then live events; one whose
// cursor is older than the retention window gets #info OutdatedCursor first.
func TestReplayFromCursor(t *testing.T) {
	t.Parallel()
	r := New(t)
	for range 5 {
		_, err := r.Identity("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
		require.NoError(t, err)
	}
	read := func(cursor string, n int) []*events.XRPCStreamEvent {
		url := r.URL() + "/xrpc/com.atproto.sync.subscribeRepos"
		if cursor != "" {
			url += "?cursor=" + cursor
		}
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		require.NoError(t, err)
		defer ws.Close()
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
		var out []*events.XRPCStreamEvent
		for range n {
			_, data, err := ws.ReadMessage()
			require.NoError(t, err)
			var xev events.XRPCStreamEvent
			require.NoError(t, xev.Deserialize(bytes.NewReader(data)))
			out = append(out, &xev)
		}
		return out
	}
	got := read("3", 2)
	require.Equal(t, int64(4), got[0].RepoIdentity.Seq)
	require.Equal(t, int64(5), got[1].RepoIdentity.Seq)

	r.Trim(3)
	got = read("1", 3)
	require.NotNil(t, got[0].RepoInfo)
	require.Equal(t, "OutdatedCursor", got[0].RepoInfo.Name)
	require.Equal(t, int64(4), got[1].RepoIdentity.Seq)
	require.Equal(t, []string{"3", "1"}, r.Cursors())
}
