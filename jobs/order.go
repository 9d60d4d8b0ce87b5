package jobs

import (
	"cmp"
	"slices"
	"strings"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/rocksindex"
)

// knownLarge are bsky.network's largest collections, largest first, as last measured: the
// guess for a first run, when neither a previous run nor the index knows any sizes.
var knownLarge = []string{
	"app.bsky.feed.like",
	"app.bsky.feed.post",
	"app.bsky.actor.profile",
	"app.bsky.graph.follow",
	"app.bsky.feed.repost",
	"app.bsky.graph.block",
	"chat.bsky.actor.declaration",
	"app.bsky.feed.threadgate",
	"app.bsky.graph.listitem",
	"app.bsky.feed.postgate",
	"app.bsky.graph.list",
	"app.bsky.graph.starterpack",
	"app.bsky.feed.generator",
}

// orderLargestFirst sorts incomplete collections so the longest chains start first: by what
// a previous run imported, then by the index's size estimate, then by the known-large list,
// then by name. Page chains run one page after another, so a long chain started late sets
// the whole backfill's wall time.
func orderLargestFirst(rows []pgstore.BackfillProgress, index *rocksindex.Index) {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Collection
	}
	sizes, err := index.ApproximateSizes(names)
	if err != nil {
		sizes = make([]uint64, len(rows)) // an estimate only: go on without it
	}
	size := make(map[string]uint64, len(rows))
	for i, n := range names {
		size[n] = sizes[i]
	}
	rank := func(c string) int {
		if i := slices.Index(knownLarge, c); i >= 0 {
			return i
		}
		return len(knownLarge)
	}
	slices.SortFunc(rows, func(a, b pgstore.BackfillProgress) int {
		return cmp.Or(
			cmp.Compare(b.ImportedCount, a.ImportedCount),
			cmp.Compare(size[b.Collection], size[a.Collection]),
			cmp.Compare(rank(a.Collection), rank(b.Collection)),
			strings.Compare(a.Collection, b.Collection),
		)
	})
}
