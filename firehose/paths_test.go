package firehose

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/require"
)

// The fast path accepts and refuses exactly what indigo's syntax.ParseRepoPath does, on the
// first sight of a collection and on every later one.
func TestCollectionOfAgreesWithIndigo(t *testing.T) {
	t.Parallel()
	paths := []string{
		"app.bsky.feed.post/3k2aqz7xw4c2y", "app.bsky.feed.post/self", "app.bsky.feed.post/a_b~c.d:e-f",
		"app.bsky.feed.post/.", "app.bsky.feed.post/..", "app.bsky.feed.post/", "app.bsky.feed.post",
		"app.bsky.feed.post/a/b", "/3k2aqz7xw4c2y", "app..bsky/3k2", "app.bsky.feed.post/a b",
		"app.bsky.feed.post/" + string(make([]byte, 513)), "app.bsky.feed.post/Ab9", "com.x/3k",
		"app.bsky.feed.post/\u00e9", "Not An NSID/3k", "app.bsky.feed.post//x",
	}
	var c collections
	for round := range 2 { // the second round hits the set
		for _, p := range paths {
			want, _, wantErr := syntax.ParseRepoPath(p)
			got, err := c.collectionOf(p)
			if wantErr != nil {
				require.Error(t, err, "round %d: %q", round, p)
				continue
			}
			require.NoError(t, err, "round %d: %q", round, p)
			require.Equal(t, want.String(), got, "round %d: %q", round, p)
		}
	}
}

func FuzzCollectionOf(f *testing.F) {
	f.Add("app.bsky.feed.post/3k2aqz7xw4c2y")
	f.Add("app.bsky.feed.post/..")
	var c collections
	f.Fuzz(func(t *testing.T, p string) {
		want, _, wantErr := syntax.ParseRepoPath(p)
		for range 2 {
			got, err := c.collectionOf(p)
			if (err != nil) != (wantErr != nil) || (err == nil && got != want.String()) {
				t.Fatalf("%q: got %q, %v; indigo %q, %v", p, got, err, want, wantErr)
			}
		}
	})
}
