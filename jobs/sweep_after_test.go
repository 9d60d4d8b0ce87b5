package jobs

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// deletedAtRelay has the stream's relay hold the accounts deleted, as bsky.network's relay
// holds the accounts its listReposByCollection still lists.
func (b *bundle) deletedAtRelay(t *testing.T, dids ...string) {
	t.Helper()
	for _, did := range dids {
		_, err := b.stream.AccountStatus(did, false, "deleted")
		require.NoError(t, err)
	}
}

// watchersDone waits until the backfill is over and every watcher of it has decided.
func (b *bundle) watchersDone(t *testing.T) {
	t.Helper()
	b.waitDone(t, 30*time.Second) // the run's end enqueues one too
	await.Until(t, 30*time.Second, "the sweep watchers to decide", func() (bool, any) {
		res, err := b.backfill.River.JobList(context.Background(), river.NewJobListParams().Kinds(SweepAfterBackfillKind).First(100))
		require.NoError(t, err)
		for _, j := range res.Jobs {
			if j.State != rivertype.JobStateCompleted {
				return false, j.State
			}
		}
		return len(res.Jobs) > 0, len(res.Jobs)
	})
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
	b.watchersDone(t)
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 1, "one sweep for the two chains and the run")
	first := b.waitSweepFinished(t, sweeps[0].ID)
	require.Equal(t, SweepReasonBackfill, first.Reason)
	require.Equal(t, int64(3), first.UnlistedAsked, "bob, carol and dave: in the index, not listed by the relay")
	require.Equal(t, int64(1), first.AccountsRemoved, "bob")
	b.requireListed(t, map[string][]string{post: {alice, dave}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, bob))
	require.Equal(t, "takendown", b.status(t, carol))

	// Everything is complete: a start pages nothing, and calls for no sweep.
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.watchersDone(t)
	require.Len(t, b.sweepsOf(t), 1)

	// Erin joined and was deleted after the sweep: a refresh's pages bring her in, and the
	// sweep they call for takes her out.
	_, err = b.stream.AccountStatus(erin, false, "deleted")
	require.NoError(t, err)
	b.relay.Append(like, erin)
	_, err = b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.NoError(t, err)
	b.watchersDone(t)
	sweeps = b.sweepsOf(t)
	require.Len(t, sweeps, 2)
	second := b.waitSweepFinished(t, sweeps[0].ID)
	require.Equal(t, SweepReasonBackfill, second.Reason)
	require.Equal(t, int64(1), second.AccountsRemoved, "erin")
	b.requireListed(t, map[string][]string{post: {alice, dave}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, erin))
}

// While a sweep of the relay is at work, the watcher waits for it; one that walked the index
// after the pages covers them, and no other follows. A sweep whose job is gone walks nothing,
// and is no such cover.
func TestNoSweepAfterTheBackfillWhileOneWillWalkTheIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true})
	const post = "app.bsky.feed.post"
	d := testrelay.DIDs("pending", 3)
	alice, bob, carol := d[0], d[1], d[2]
	b.relay.Append(post, alice, bob)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	b.account(t, alice, fakerelay.Create(post, "1"))
	b.deletedAtRelay(t, bob, carol)
	// A stopped sweep (its job gone) of the same relay, named as an operator would.
	base, err := relayHTTPBase(b.stream.URL())
	require.NoError(t, err)
	_, err = queries.SweepInsert(ctx, b.pool, pgstore.SweepInsertParams{Relay: base, Reason: SweepReasonOperator})
	require.NoError(t, err)
	// An operator's sweep at work, held in the relay's account list.
	release := b.stream.HoldListRepos()
	held, err := b.backfill.StartSweep(ctx, base, nil)
	require.NoError(t, err)

	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	time.Sleep(time.Second) // the watcher's waits are 200 ms here
	require.Len(t, b.sweepsOf(t), 2, "the watcher waits for the sweep at work")
	b.requireListed(t, map[string][]string{post: {alice, bob}})
	release()
	got := b.waitSweepFinished(t, held.ID)
	require.Equal(t, int64(1), got.AccountsRemoved, "bob")
	b.watchersDone(t)
	require.Len(t, b.sweepsOf(t), 2, "its walk of the index came after the pages")
	b.requireListed(t, map[string][]string{post: {alice}})

	// Without the sweep at work, the stopped one is no cover: carol's page calls for a sweep.
	b.relay.Append(post, carol)
	_, err = b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.NoError(t, err)
	b.watchersDone(t)
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 3)
	require.Equal(t, SweepReasonBackfill, sweeps[0].Reason)
	b.waitSweepFinished(t, sweeps[0].ID)
	b.requireListed(t, map[string][]string{post: {alice}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, carol))
}

// The watcher's rule, state by state.
func TestSweepAfterDecisionComparesPagesWithWalks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	relay := "wss://relay.example"
	decide := func(live ...int64) sweepAfter {
		t.Helper()
		sweeping := map[int64]bool{}
		for _, id := range live {
			sweeping[id] = true
		}
		var got sweepAfter
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			var err error
			got, err = sweepAfterDecision(ctx, tx, relay, sweeping)
			return err
		}))
		return got
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := b.pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	insert := func(relay string) int64 {
		t.Helper()
		id, err := queries.SweepInsert(ctx, b.pool, pgstore.SweepInsertParams{Relay: relay, Reason: SweepReasonOperator})
		require.NoError(t, err)
		return id
	}
	require.Equal(t, sweepNotNeeded, decide(), "no page written")
	exec(`INSERT INTO backfill_progress (collection, source, pages_written_at) VALUES ('a.b.c', 's', now() - interval '1 hour')`)
	require.Equal(t, sweepStart, decide(), "a page, and no sweep ever")

	pending := insert("https://relay.example") // the same relay, as an operator names it
	other := insert("wss://other.example")
	require.Equal(t, sweepStart, decide(), "a sweep whose job is gone walks nothing")
	require.Equal(t, sweepStart, decide(other), "another relay's sweep")
	require.Equal(t, sweepWait, decide(pending), "a sweep at work: decide once it has ended")

	exec(`UPDATE account_sweeps SET unlisted_began_at = now() WHERE id IN ($1, $2)`, pending, other)
	require.Equal(t, sweepWait, decide(pending), "a sweep walking the index: decide once it has finished")
	require.Equal(t, sweepStart, decide(), "a walk that never finished covers nothing")
	exec(`UPDATE account_sweeps SET finished_at = now() WHERE id = $1`, other)
	require.Equal(t, sweepStart, decide(), "another relay's walk covers nothing here")
	exec(`UPDATE account_sweeps SET finished_at = now() WHERE id = $1`, pending)
	require.Equal(t, sweepNotNeeded, decide(), "its walk began after the page")
	exec(`UPDATE backfill_progress SET pages_written_at = now() + interval '1 second'`)
	require.Equal(t, sweepStart, decide(), "a page after the walk began")
}

// A sweep's walk of the index's accounts waits for the page jobs running when it began: a page
// stamps its row before its index write lands, so the sweep after the backfill would count it
// as walked. Here the page of a deleted account is held before its fetch while a sweep reaches
// that walk; the walk waits for it, then takes the account out.
func TestSweepWalkWaitsForThePagesRunningWhenItBegins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	held := make(chan struct{})
	release := sync.OnceFunc(func() { close(held) })
	t.Cleanup(release)
	fetching := make(chan struct{}, 10)
	b := setup(t, setupOpts{lexiconList: true, beforeFetch: func(ctx context.Context) error {
		fetching <- struct{}{}
		select {
		case <-held:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	const post = "app.bsky.feed.post"
	bob := testrelay.DIDs("running", 1)[0]
	b.relay.Append(post, bob)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	_, err := b.stream.AccountStatus(bob, false, "deleted")
	require.NoError(t, err)
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	<-fetching

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

// A gap's sweep walks the index after its refresh: the refresh's pages call for no sweep of
// their own.
func TestAGapsSweepCoversItsRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, gapRepair: true, sweepAfterBackfill: true})
	const post = "app.bsky.feed.post"
	d := testrelay.DIDs("gapcover", 2)
	b.relay.Append(post, d...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	_, err := b.stream.AccountStatus(d[1], false, "deleted")
	require.NoError(t, err)
	require.NoError(t, queries.FirehoseCursorSet(ctx, b.pool, pgstore.FirehoseCursorSetParams{Relay: b.stream.URL(), Seq: 41}))
	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 41, GapOutdatedCursor, "cursor too old")
	require.NoError(t, err)
	b.waitGapRepaired(t, gap.ID)
	b.watchersDone(t)
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 1)
	require.Equal(t, SweepReasonGap, sweeps[0].Reason)
	b.requireListed(t, map[string][]string{post: {d[0]}})
}

// The watcher is asked for by more than a chain that completes: a run whose chain stopped,
// and one cancelled, wrote pages that are in the index all the same, and the workers' start
// finds a backfill written before the setting was on.
func TestASweepFollowsPagesNoCompletedChainNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const post = "app.bsky.feed.post"
	d := testrelay.DIDs("stopped", 10)

	// A chain that stops after its first page of 7.
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true, maxAttempts: 1})
	b.relay.Append(post, d...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	b.relay.Intercept(func(w http.ResponseWriter, _ *http.Request, n int64) bool {
		if n < 2 {
			return false
		}
		http.Error(w, "down", http.StatusBadGateway)
		return true
	})
	b.deletedAtRelay(t, d...)
	b.watchersDone(t) // the workers' start asked: nothing paged yet
	require.Empty(t, b.sweepsOf(t))
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.watchersDone(t)
	st, err := b.backfill.Status(ctx)
	require.NoError(t, err)
	require.False(t, statusOf(t, st, post).Completed, "the chain stopped")
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 1)
	require.Equal(t, int64(7), b.waitSweepFinished(t, sweeps[0].ID).AccountsRemoved, "the first page's accounts")
	b.requireListed(t, map[string][]string{post: nil})

	// A run cancelled after its first page: no chain completes.
	cb := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true})
	const like = "app.bsky.feed.like"
	e := testrelay.DIDs("cancelled", 10)
	cb.relay.Append(like, e...)
	cb.relay.SetLLMsTxt(testrelay.LexiconList(like))
	cb.deletedAtRelay(t, e...)
	hold := make(chan struct{})
	cb.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n < 2 {
			return false
		}
		select { // the second page: held until the cancel
		case <-hold:
		case <-r.Context().Done():
		}
		http.Error(w, "gone", http.StatusServiceUnavailable)
		return true
	})
	cb.watchersDone(t)
	_, err = cb.backfill.Start(ctx, cb.src)
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "the first page", func() (bool, any) {
		got, err := cb.index.ListRepos(like, "", 100)
		require.NoError(t, err)
		return len(got) == 7, got
	})
	_, err = cb.backfill.Cancel(ctx)
	require.NoError(t, err)
	close(hold)
	cb.watchersDone(t)
	sweeps = cb.sweepsOf(t)
	require.Len(t, sweeps, 1)
	require.Equal(t, int64(7), cb.waitSweepFinished(t, sweeps[0].ID).AccountsRemoved, "the cancelled run's page")
	cb.requireListed(t, map[string][]string{like: nil})

	// Pages from before: the start of the workers asks.
	c := setup(t, setupOpts{noStart: true, sweepAfterBackfill: true})
	_, err = c.index.AddPairs([]rocksindex.Pair{{Collection: post, DID: d[0]}})
	require.NoError(t, err)
	_, err = c.pool.Exec(ctx, `INSERT INTO backfill_progress (collection, source, pages_written_at) VALUES ($1, 's', now())`, post)
	require.NoError(t, err)
	_, err = c.stream.AccountStatus(d[0], false, "deleted")
	require.NoError(t, err)
	require.NoError(t, c.backfill.StartWorkers(ctx))
	t.Cleanup(func() {
		stop, cancel := context.WithCancel(ctx)
		cancel()
		c.backfill.StopWorkers(stop, 10*time.Second)
	})
	c.watchersDone(t)
	sweeps = c.sweepsOf(t)
	require.Len(t, sweeps, 1)
	c.waitSweepFinished(t, sweeps[0].ID)
	c.requireListed(t, map[string][]string{post: nil})
}
