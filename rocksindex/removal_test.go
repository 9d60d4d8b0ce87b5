package rocksindex

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A pair the stream proved gone leaves both sides; no backfill page puts it back (the
// source never removes anything, so its listing is no evidence); the stream's next create
// of it does, and clears the tombstone; other pairs are untouched.
func TestRemovedPairIsNotPutBackByABackfillPage(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	const a, b = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
	require.NoError(t, ix.Add("app.bsky.feed.post", []string{a, b}))
	require.NoError(t, ix.Add("app.bsky.feed.like", []string{a}))

	n, err := ix.RemovePairs([]Pair{{"app.bsky.feed.post", a}, {"app.bsky.feed.repost", a}})
	require.NoError(t, err)
	require.Equal(t, 1, n, "one of the two was held")
	listed, err := ix.ListRepos("app.bsky.feed.post", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{b}, listed)
	colls, err := ix.CollectionsOf(a)
	require.NoError(t, err)
	require.Equal(t, []string{"app.bsky.feed.like"}, colls)

	// A backfill page that still lists it (fetched before or after the removal).
	require.NoError(t, ix.Add("app.bsky.feed.post", []string{a, b}))
	listed, err = ix.ListRepos("app.bsky.feed.post", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{b}, listed, "the page did not put it back")
	removed, err := ix.Removed("app.bsky.feed.post", a)
	require.NoError(t, err)
	require.True(t, removed)

	// The stream sees a new post by a: the pair is back, and pages may add it again.
	added, err := ix.AddPairs([]Pair{{"app.bsky.feed.post", a}})
	require.NoError(t, err)
	require.Equal(t, 1, added)
	removed, err = ix.Removed("app.bsky.feed.post", a)
	require.NoError(t, err)
	require.False(t, removed)
	listed, err = ix.ListRepos("app.bsky.feed.post", "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{a, b}, listed)
	colls, err = ix.CollectionsOf(a)
	require.NoError(t, err)
	require.Equal(t, []string{"app.bsky.feed.like", "app.bsky.feed.post"}, colls)
}
