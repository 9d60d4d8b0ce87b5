package jobs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/rocksindex"
)

func TestOrderLargestFirst(t *testing.T) {
	t.Parallel()
	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(index.Close)
	rows := []pgstore.BackfillProgress{
		{Collection: "a.small.one"},
		{Collection: "app.bsky.actor.profile"},
		{Collection: "b.half.done", ImportedCount: 500},
		{Collection: "app.bsky.feed.like"},
		{Collection: "c.bigger.run", ImportedCount: 9000},
		{Collection: "z.last.one"},
	}
	orderLargestFirst(rows, index)
	var got []string
	for _, r := range rows {
		got = append(got, r.Collection)
	}
	require.Equal(t, []string{
		"c.bigger.run", "b.half.done", // what a previous run imported
		"app.bsky.feed.like", "app.bsky.actor.profile", // the known-large guess
		"a.small.one", "z.last.one", // then by name
	}, got)
}
