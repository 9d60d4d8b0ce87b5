package jobs

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

// holdPages makes the source answer pages only once release is called: a run stays live.
func holdPages(b *bundle) (release func()) {
	held := make(chan struct{})
	b.relay.Intercept(func(_ http.ResponseWriter, r *http.Request, _ int64) bool {
		select {
		case <-held:
		case <-r.Context().Done():
		}
		return false
	})
	return sync.OnceFunc(func() { close(held) })
}

// waitGapRepaired waits until gap id is repaired and returns it.
func (b *bundle) waitGapRepaired(t *testing.T, id int64) Gap {
	t.Helper()
	var got Gap
	await.Until(t, 60*time.Second, "the gap to be repaired", func() (bool, any) {
		gaps, err := b.backfill.Gaps(context.Background())
		require.NoError(t, err)
		for _, g := range gaps {
			if g.ID == id {
				got = g
				return g.RepairedAt != nil, g
			}
		}
		return false, gaps
	})
	return got
}

// requireListed walks every collection of want through ListRepos and compares it with want
// as sets (each DID once, in DID order).
func (b *bundle) requireListed(t *testing.T, want map[string][]string) {
	t.Helper()
	colls, err := b.index.Collections()
	require.NoError(t, err)
	for _, c := range colls {
		if _, ok := want[c]; !ok {
			want[c] = nil
		}
	}
	for c, dids := range want {
		got, err := b.index.ListRepos(c, "", 1<<20)
		require.NoError(t, err)
		exp := slices.Compact(slices.Sorted(slices.Values(dids)))
		if len(exp) == 0 {
			require.Empty(t, got, c)
			continue
		}
		require.Equal(t, exp, got, c)
	}
}

// A gap in the stream (events never applied) is repaired by a refresh run that pages every
// collection again from the beginning: the adds the stream missed come back (a new collection
// too), while the pairs the stream removed stay out even though the source still lists them,
// a deleted account stays deleted and a hidden one stays hidden. Compared as sets.
func TestStreamGapIsRepairedByARefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, gapRepair: true})
	const post, like, gapped = "app.bsky.feed.post", "app.bsky.feed.like", "app.example.gapped"
	dids := testrelay.DIDs("", 30)
	b.relay.Append(post, dids[:20]...)
	b.relay.Append(like, dids[10:25]...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post, like))
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	// What the stream did before the gap: the source (like bsky.network) never removes.
	removed, err := b.index.RemovePairs([]rocksindex.Pair{{Collection: post, DID: dids[0]}})
	require.NoError(t, err)
	require.Equal(t, 1, removed)
	_, _, err = b.index.RemoveAccount(dids[1])
	require.NoError(t, err)
	require.NoError(t, b.index.SetAccountStatus(dids[2], "takendown"))
	// What the gap carried and the stream never applied: new pairs, a new collection.
	b.relay.Append(post, dids[25:]...)
	b.relay.Append(like, dids[0], dids[5])
	b.relay.Append(gapped, dids[3], dids[26])
	b.relay.SetLLMsTxt(testrelay.LexiconList(post, like, gapped))

	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 42, GapOutdatedCursor, "cursor too old")
	require.NoError(t, err)
	again, err := b.backfill.RecordGap(ctx, b.stream.URL(), 42, GapOutdatedCursor, "cursor too old")
	require.NoError(t, err)
	require.Equal(t, gap.ID, again.ID, "the same gap reported again is one gap")
	require.EqualValues(t, 1, metrics.Value(b.backfill.Metrics.FirehoseGaps))

	got := b.waitGapRepaired(t, gap.ID)
	require.NotNil(t, got.RepairRunID)
	st := b.waitDone(t, 30*time.Second)
	require.Equal(t, *got.RepairRunID, st.LastRun.ID, "the refresh run repaired it")
	require.Equal(t, 3, st.Completed)
	require.EqualValues(t, 25, statusOf(t, st, post).Imported, "the refresh paged post again from the beginning")

	gone := map[string]bool{dids[1]: true, dids[2]: true} // deleted; hidden
	truth := map[string][]string{}
	for _, c := range []string{post, like, gapped} {
		for _, d := range b.relay.Collection(c) {
			if !gone[d] && !(c == post && d == dids[0]) {
				truth[c] = append(truth[c], d)
			}
		}
	}
	b.requireListed(t, truth)
	st2, err := b.index.AccountStatus(dids[2])
	require.NoError(t, err)
	require.Equal(t, "takendown", st2, "a refresh does not unhide an account")
}

// Without automatic repair a gap is only recorded; an operator's refresh (start with
// refresh) takes it on, and it is repaired once every collection is complete again.
func TestStreamGapWaitsForAnOperatorsRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true})
	const post = "app.bsky.feed.post"
	b.relay.Append(post, testrelay.DIDs("", 10)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 7, GapOutdatedCursor, "")
	require.NoError(t, err)
	jobs, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(GapRepairKind))
	require.NoError(t, err)
	require.Empty(t, jobs.Jobs, "no repair is enqueued without a repair source")
	b.relay.Append(post, testrelay.DIDs("x", 4)...)

	res, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	require.Zero(t, res.Collections, "a start without refresh skips completed collections")
	b.waitDone(t, 30*time.Second)
	gaps, err := b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.Nil(t, gaps[0].RepairedAt, "a run that paged nothing again repairs nothing")

	res, err = b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.NoError(t, err)
	require.Equal(t, 1, res.Refreshed)
	require.Equal(t, 1, res.GapsRepairing)
	got := b.waitGapRepaired(t, gap.ID)
	require.Equal(t, res.RunID, *got.RepairRunID)
	b.requireListed(t, map[string][]string{post: b.relay.Collection(post)})

	// The same cursor reported after a refresh has started is a gap of its own: the relay
	// may have dropped events since, some after that refresh's pages.
	next, err := b.backfill.RecordGap(ctx, b.stream.URL(), 7, GapOutdatedCursor, "")
	require.NoError(t, err)
	require.NotEqual(t, gap.ID, next.ID)
	require.Nil(t, next.RepairRunID)
	require.Nil(t, next.RepairedAt)
}

// A gap found while a run is live waits for it: that run's pages may have been fetched
// before the gap was detected. Its refresh starts once the run has ended.
func TestStreamGapRepairWaitsForTheLiveRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, gapRepair: true})
	release := holdPages(b)
	const post = "app.bsky.feed.post"
	b.relay.Append(post, testrelay.DIDs("", 10)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	first, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	require.Equal(t, 1, first.Collections)

	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 7, GapOutdatedCursor, "")
	require.NoError(t, err)
	jobs, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(GapRepairKind))
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 1)
	await.Until(t, 30*time.Second, "the repair to be asked, and to wait", func() (bool, any) {
		job, err := b.backfill.River.JobGet(ctx, jobs.Jobs[0].ID)
		require.NoError(t, err)
		// A snooze leaves the job to come back (scheduled, then available), never completed.
		require.NotEqual(t, rivertype.JobStateCompleted, job.State, "the repair did not wait for the live run")
		return job.AttemptedAt != nil, job.State
	})
	asked, err := b.backfill.River.JobGet(ctx, jobs.Jobs[0].ID)
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "the repair to ask again, and wait again", func() (bool, any) {
		job, err := b.backfill.River.JobGet(ctx, jobs.Jobs[0].ID)
		require.NoError(t, err)
		require.NotEqual(t, rivertype.JobStateCompleted, job.State, "the repair did not wait for the live run")
		return job.AttemptedAt.After(*asked.AttemptedAt), job.State
	})
	gaps, err := b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.Nil(t, gaps[0].RepairRunID, "no refresh while a run is live")

	release()
	got := b.waitGapRepaired(t, gap.ID)
	require.Greater(t, *got.RepairRunID, first.RunID, "the refresh is a run of its own, after the live one")
	b.requireListed(t, map[string][]string{post: b.relay.Collection(post)})
}

// A refresh leaves a collection being reset to its reset (which pages it again from the
// beginning once its DIDs are gone), and no gap closes while a reset is under way; a refresh
// whose discovery failed is refused, so a collection first seen in a gap cannot be missed.
func TestRefreshLeavesResetsAloneAndNeedsWholeDiscovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true})
	const post, like = "app.bsky.feed.post", "app.bsky.feed.like"
	b.relay.Append(post, testrelay.DIDs("", 3)...)
	b.relay.Append(like, testrelay.DIDs("", 2)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post, like))
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	// A reset under way, as ProgressResetBegin leaves its row: complete, resetting.
	_, err = b.pool.Exec(ctx, `UPDATE backfill_progress SET resetting_since = now() WHERE collection = $1`, like)
	require.NoError(t, err)
	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 3, GapOutdatedCursor, "")
	require.NoError(t, err)
	res, err := b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.NoError(t, err)
	require.Equal(t, 1, res.Refreshed, "the collection being reset is left to its reset")
	st := b.waitDone(t, 30*time.Second)
	require.True(t, statusOf(t, st, like).Completed)
	gaps, err := b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.Equal(t, gap.ID, gaps[0].ID)
	require.Nil(t, gaps[0].RepairedAt, "no gap closes while a collection is being reset")

	_, err = b.pool.Exec(ctx, `UPDATE backfill_progress SET resetting_since = NULL WHERE collection = $1`, like)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return closeGaps(ctx, tx) }))
	gaps, err = b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.NotNil(t, gaps[0].RepairedAt, "closed once the reset is over and every collection complete")

	// The lexicon list fails, and the source serves no collection list: discovery is blind
	// to a collection first seen in the gap.
	b.backfill.Discoverer.LexiconListURL = b.relay.URL + "/missing"
	_, err = b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.ErrorIs(t, err, ErrDiscoveryIncomplete)
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err, "a start without refresh goes on without the list, as before")
}

// A cursor move records the gap it opens in its own transaction: forward or to the live tail
// it skips events, back it replays them, unless the relay answered the previous cursor with
// FutureCursor (the stream after the move is the relay's new sequence). reopen-all forgets
// every gap with the index they were about.
func TestCursorMovesRecordTheGapsTheyOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	move := func(previous *int64, seq int64) *Gap {
		t.Helper()
		var gap *Gap
		recorded := func() {}
		require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			var err error
			gap, recorded, err = b.backfill.RecordMoveGapTx(ctx, tx, b.stream.URL(), firehose.Moved{Previous: previous}, seq)
			return err
		}))
		recorded()
		return gap
	}
	p := func(n int64) *int64 { return &n }
	require.Nil(t, move(nil, 5), "nothing was saved: nothing skipped")
	require.Nil(t, move(p(-1), 5), "from the live tail: nothing known to skip")
	require.Nil(t, move(p(9), 5), "back: replayed")
	fwd := move(p(9), 12)
	require.NotNil(t, fwd)
	require.Equal(t, GapCursorMove, fwd.Kind)
	require.Equal(t, int64(9), fwd.AfterSeq)
	live := move(p(20), -1)
	require.NotNil(t, live)
	require.Equal(t, int64(20), live.AfterSeq)

	future, err := b.backfill.RecordGap(ctx, b.stream.URL(), 500, GapFutureCursor, "cursor in the future")
	require.NoError(t, err)
	// Its refresh starts; the follower, restarted while still held, reports it again: what it
	// lost was gone before the first report, so it is the same gap, not one more refresh.
	_, err = b.backfill.StartWith(ctx, b.src, StartOptions{Refresh: true})
	require.NoError(t, err)
	again, err := b.backfill.RecordGap(ctx, b.stream.URL(), 500, GapFutureCursor, "cursor in the future")
	require.NoError(t, err)
	require.Equal(t, future.ID, again.ID)
	require.NotNil(t, again.RepairRunID)
	back := move(p(500), 3)
	require.NotNil(t, back, "a move back from a FutureCursor skips the new sequence's events before it")
	require.Equal(t, int64(500), back.AfterSeq)
	require.NotEqual(t, future.ID, back.ID, "the move's gap is its own: the FutureCursor's refresh began before it")
	require.Nil(t, move(p(501), 3), "another cursor's FutureCursor says nothing of this one")

	_, err = ReopenAll(ctx, b.pool, b.index)
	require.NoError(t, err)
	gaps, err := b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.Empty(t, gaps, "reopen-all forgets the replaced index's gaps")
}

// A repair that has not started yet starts no refresh once an operator has cancelled the run
// that was live when the gap was found: the gap stays open for the operator to repair.
func TestGapRepairRespectsACancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, gapRepair: true, cancelWait: 5 * time.Second})
	t.Cleanup(holdPages(b))
	const post = "app.bsky.feed.post"
	b.relay.Append(post, testrelay.DIDs("", 10)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 7, GapOutdatedCursor, "")
	require.NoError(t, err)
	_, err = b.backfill.Cancel(ctx)
	require.NoError(t, err)
	jobs, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(GapRepairKind))
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 1)
	b.waitJobState(t, jobs.Jobs[0].ID, rivertype.JobStateCompleted)
	gaps, err := b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.Equal(t, gap.ID, gaps[0].ID)
	require.Nil(t, gaps[0].RepairRunID, "no refresh after the operator's cancel")
	require.Nil(t, gaps[0].RepairedAt)
}

// A gap's rev floor is an hour before the time of the events at the saved cursor, not
// before the save: a follower three hours behind saved it late. A relay clock ahead of this
// one's counts for no later than the save.
func TestAGapsRevFloorIsTheTimeOfTheEventsAtTheCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true, gapRepair: true})
	id, err := b.index.ID()
	require.NoError(t, err)
	floorOf := func(relay string, at time.Time) time.Time {
		t.Helper()
		n, err := queries.FirehoseCursorSave(ctx, b.pool, pgstore.FirehoseCursorSaveParams{
			Relay: relay, Seq: 41, Generation: 0, IndexID: id, EventTime: &at})
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		gap, err := b.backfill.RecordGap(ctx, relay, 41, GapOutdatedCursor, "cursor too old")
		require.NoError(t, err)
		sw, err := queries.SweepOfGap(ctx, b.pool, &gap.ID)
		require.NoError(t, err)
		require.NotNil(t, sw.RevsAfter)
		return *sw.RevsAfter
	}
	behind := time.Now().Add(-3 * time.Hour).Truncate(time.Microsecond)
	require.True(t, behind.Add(-sweepRevMargin).Equal(floorOf(b.stream.URL(), behind)))
	require.WithinDuration(t, time.Now().Add(-sweepRevMargin),
		floorOf("wss://ahead.example", time.Now().Add(24*time.Hour)), time.Minute)
}
