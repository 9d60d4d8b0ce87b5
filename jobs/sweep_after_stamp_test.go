package jobs

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// A page whose DIDs reached the index but whose transaction rolled back (here its commit
// fails, on the chain's only attempt, as a cancel asked for during the commit would end it)
// still calls for the sweep after the backfill: the deleted accounts it brought are taken
// out, compared as sets.
func TestAPageWrittenButNotCommittedCallsForASweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const post = "app.bsky.feed.post"
	d := testrelay.DIDs("uncommitted", 5)
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true, maxAttempts: 1,
		beforeCommit: func(context.Context, string) error { return errors.New("the connection dropped") }})
	b.relay.Append(post, d...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	for _, did := range d {
		_, err := b.stream.AccountStatus(did, false, "deleted")
		require.NoError(t, err)
	}
	b.watchersDone(t) // the workers' start asked: nothing paged yet
	require.Empty(t, b.sweepsOf(t))

	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.watchersDone(t)
	row, err := queries.ProgressGet(ctx, b.pool, post)
	require.NoError(t, err)
	require.Empty(t, row.Cursor, "the page never committed")
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 1, "the uncommitted page's write calls for a sweep")
	require.Equal(t, int64(len(d)), b.waitSweepFinished(t, sweeps[0].ID).AccountsRemoved)
	b.requireListed(t, map[string][]string{post: nil})
}
