package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// A page whose DIDs reached the index but whose transaction rolled back still calls for the
// sweep after the backfill: the deleted accounts it brought are taken out, compared as sets.
// Its commit ends as a cancel asked for during the commit ends it, or fails on the chain's
// only attempt.
func TestAPageWrittenButNotCommittedCallsForASweep(t *testing.T) {
	t.Parallel()
	for name, end := range map[string]error{
		"cancelled": river.JobCancel(fmt.Errorf("backfill: %w", errChainCancelled)),
		"failed":    errors.New("the connection dropped"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const post = "app.bsky.feed.post"
			d := testrelay.DIDs("uncommitted-"+name, 5)
			b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true, maxAttempts: 1,
				beforeCommit: func(context.Context, string) error { return end }})
			b.relay.Append(post, d...)
			b.relay.SetLLMsTxt(testrelay.LexiconList(post))
			b.deletedAtRelay(t, d...)
			b.watchersDone(t) // the workers' start asked: nothing paged yet
			require.Empty(t, b.sweepsOf(t))

			_, err := b.backfill.Start(ctx, b.src)
			require.NoError(t, err)
			b.watchersDone(t)
			row, err := queries.ProgressGet(ctx, b.pool, post)
			require.NoError(t, err)
			require.Zero(t, row.PagesFetched, "the page never committed")
			require.Nil(t, row.CompletedAt)
			require.NotNil(t, row.PagesWrittenAt, "its write stamped the row")
			sweeps := b.sweepsOf(t)
			require.Len(t, sweeps, 1, "the uncommitted page's write calls for a sweep")
			require.Equal(t, int64(len(d)), b.waitSweepFinished(t, sweeps[0].ID).AccountsRemoved)
			b.requireListed(t, map[string][]string{post: nil})
		})
	}
}

// A page written while the database is bound to another index (a stale process after
// reopen-all) wrote to an index no sweep will walk: its failed commit stamps nothing, and no
// sweep follows.
func TestAPageWrittenToAnotherIndexCallsForNoSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const post = "app.bsky.feed.post"
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true, maxAttempts: 1})
	b.relay.Append(post, testrelay.DIDs("elsewhere", 5)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	b.watchersDone(t)
	require.NoError(t, queries.IndexIdentitySet(ctx, b.pool, "another index"))

	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.watchersDone(t)
	row, err := queries.ProgressGet(ctx, b.pool, post)
	require.NoError(t, err)
	require.Contains(t, row.LastError, ErrIndexMismatch.Error(), "the page was refused")
	require.Nil(t, row.PagesWrittenAt, "its write went to an index the database does not describe")
	require.Empty(t, b.sweepsOf(t))
}
