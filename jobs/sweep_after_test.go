package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// sweepsOf lists every sweep, newest first.
func (b *bundle) sweepsOf(t *testing.T) []Sweep {
	t.Helper()
	sweeps, err := b.backfill.Sweeps(context.Background())
	require.NoError(t, err)
	return sweeps
}

// watchersDone waits until every watcher of the backfill has completed, and counts them.
func (b *bundle) watchersDone(t *testing.T) int {
	t.Helper()
	var n int
	await.Until(t, 30*time.Second, "the sweep watchers to complete", func() (bool, any) {
		res, err := b.backfill.River.JobList(context.Background(), river.NewJobListParams().Kinds(SweepAfterBackfillKind).First(100))
		require.NoError(t, err)
		n = len(res.Jobs)
		for _, j := range res.Jobs {
			if j.State != rivertype.JobStateCompleted {
				return false, j.State
			}
		}
		return true, n
	})
	return n
}

// A backfill from a source that, like bsky.network, lists accounts long deleted is followed by
// a sweep of the stream's relay, which takes them out: the index then equals the truth, as
// sets. A start that pages nothing calls for no sweep; pages written after the sweep walked
// the index call for another.
func TestABackfillIsFollowedByASweepOfTheRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true})
	const post, like = "app.bsky.feed.post", "app.bsky.feed.like"
	d := testrelay.DIDs("after", 5)
	alice, bob, carol, dave, erin := d[0], d[1], d[2], d[3], d[4]
	b.relay.Append(post, alice, bob, carol, dave)
	b.relay.Append(like, bob, carol)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post, like))
	b.account(t, alice, fakerelay.Create(post, "1"))
	_, err := b.stream.AccountStatus(bob, false, "deleted")
	require.NoError(t, err)
	b.account(t, carol, fakerelay.Create(post, "1"), fakerelay.Create(like, "1"))
	_, err = b.stream.AccountStatus(carol, false, "takendown")
	require.NoError(t, err)
	// dave is unknown to the relay: left alone.

	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	require.Equal(t, 1, b.watchersDone(t), "the two chains that completed share one watcher")
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 1)
	first := b.waitSweepFinished(t, sweeps[0].ID)
	require.Equal(t, SweepReasonBackfill, first.Reason)
	row, err := queries.SweepGet(ctx, b.pool, first.ID)
	require.NoError(t, err)
	require.NotNil(t, row.UnlistedBeganAt, "saved before the walk of the index")
	require.False(t, row.UnlistedBeganAt.After(*row.UnlistedAt))
	require.Equal(t, int64(3), first.UnlistedAsked, "bob, carol and dave: in the index, not listed by the relay")
	require.Equal(t, int64(1), first.AccountsRemoved, "bob")
	b.requireListed(t, map[string][]string{post: {alice, dave}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, bob))
	require.Equal(t, "takendown", b.status(t, carol))

	// Everything is complete: a start pages nothing, and no watcher is asked for.
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	require.Equal(t, 1, b.watchersDone(t))
	require.Len(t, b.sweepsOf(t), 1)

	// Erin joined and was deleted after the sweep: a refresh's pages bring her in, and the
	// sweep they call for takes her out.
	_, err = b.stream.AccountStatus(erin, false, "deleted")
	require.NoError(t, err)
	b.relay.Append(like, erin)
	_, err = b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	require.Equal(t, 2, b.watchersDone(t))
	sweeps = b.sweepsOf(t)
	require.Len(t, sweeps, 2)
	second := b.waitSweepFinished(t, sweeps[0].ID)
	require.Equal(t, SweepReasonBackfill, second.Reason)
	require.Equal(t, int64(1), second.AccountsRemoved, "erin")
	b.requireListed(t, map[string][]string{post: {alice, dave}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, erin))
}

// A sweep of the relay that has yet to walk the index's accounts will see the pages' accounts:
// the backfill asks for no other. Once it runs, the index equals the truth.
func TestNoSweepAfterTheBackfillWhileOneWillWalkTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true})
	const post = "app.bsky.feed.post"
	d := testrelay.DIDs("pending", 2)
	alice, bob := d[0], d[1]
	b.relay.Append(post, alice, bob)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	b.account(t, alice, fakerelay.Create(post, "1"))
	_, err := b.stream.AccountStatus(bob, false, "deleted")
	require.NoError(t, err)
	// An operator's sweep, recorded but not yet at work.
	id, err := queries.SweepInsert(ctx, b.pool, pgstore.SweepInsertParams{Relay: b.stream.URL(), Reason: SweepReasonOperator})
	require.NoError(t, err)

	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	require.Equal(t, 1, b.watchersDone(t))
	require.Len(t, b.sweepsOf(t), 1, "the operator's sweep will walk the index after the pages")
	b.requireListed(t, map[string][]string{post: {alice, bob}})

	res, err := b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Sweeps)
	got := b.waitSweepFinished(t, id)
	require.Equal(t, int64(1), got.AccountsRemoved)
	require.NotNil(t, got.UnlistedAt)
	b.requireListed(t, map[string][]string{post: {alice}})
}

// The watcher's rule, state by state: a sweep is needed once a page was written after the last
// sweep of the relay began to walk the index, unless one of it has yet to begin that walk.
func TestSweepAfterBackfillNeededComparesPagesWithWalks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	relay, other := b.stream.URL(), "wss://other.example"
	needed := func() bool {
		t.Helper()
		n, err := queries.SweepAfterBackfillNeeded(ctx, b.pool, relay)
		require.NoError(t, err)
		return n
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := b.pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	require.False(t, needed(), "no page written")
	exec(`INSERT INTO backfill_progress (collection, source, last_page_at) VALUES ('a.b.c', 's', now() - interval '1 hour')`)
	require.True(t, needed(), "a page, and no sweep ever")

	pending, err := queries.SweepInsert(ctx, b.pool, pgstore.SweepInsertParams{Relay: relay, Reason: SweepReasonOperator})
	require.NoError(t, err)
	require.False(t, needed(), "a sweep that has yet to walk the index will see the page")
	_, err = queries.SweepInsert(ctx, b.pool, pgstore.SweepInsertParams{Relay: other, Reason: SweepReasonOperator})
	require.NoError(t, err)

	began, err := queries.SweepUnlistedBegin(ctx, b.pool, pending)
	require.NoError(t, err)
	again, err := queries.SweepUnlistedBegin(ctx, b.pool, pending)
	require.NoError(t, err)
	require.Equal(t, began, again, "the walk began once")
	require.False(t, needed(), "the walk began after the page: the other relay's sweep, unwalked, does not matter")

	exec(`UPDATE backfill_progress SET last_page_at = $1::timestamptz + interval '1 second'`, began)
	require.True(t, needed(), "a page after the walk began, even while the sweep is unfinished")
	exec(`UPDATE account_sweeps SET finished_at = now() WHERE id = $1`, pending)
	require.True(t, needed())
}

// A sweep's walk of the index's accounts waits for the pages that were running when it began:
// a page stamps its row before its index write lands, so the sweep after the backfill would
// count it as walked. Here the page of a deleted account is held in its fetch while a sweep
// reaches that walk; the walk waits for it, then takes the account out.
func TestSweepWalkWaitsForThePagesRunningWhenItBegins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true})
	const post = "app.bsky.feed.post"
	bob := testrelay.DIDs("running", 1)[0]
	b.relay.Append(post, bob)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	_, err := b.stream.AccountStatus(bob, false, "deleted")
	require.NoError(t, err)
	release := holdPages(b)
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "the page to be fetched", func() (bool, any) { return b.relay.Requests() > 0, nil })

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "the walk of the index to begin", func() (bool, any) {
		got, err := queries.SweepGet(ctx, b.pool, sw.ID)
		require.NoError(t, err)
		return got.UnlistedBeganAt != nil, got
	})
	time.Sleep(time.Second)
	got, err := queries.SweepGet(ctx, b.pool, sw.ID)
	require.NoError(t, err)
	require.Nil(t, got.UnlistedAt, "the walk waits for the page running since before it began")
	release()
	b.waitDone(t, 30*time.Second)
	done := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(1), done.AccountsRemoved, "bob, whom the page brought in")
	b.requireListed(t, map[string][]string{post: nil})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, bob))
}
