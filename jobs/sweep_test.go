package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// account is a repository on the stream's relay, and on the PDS its checks ask.
func (b *bundle) account(t *testing.T, did string, ops ...fakerelay.Op) *fakerelay.Account {
	t.Helper()
	a, err := fakerelay.NewAccount(did)
	require.NoError(t, err)
	if len(ops) > 0 {
		_, err = b.stream.Commit(a, ops...)
		require.NoError(t, err)
	}
	return a
}

func (b *bundle) status(t *testing.T, did string) string {
	t.Helper()
	st, err := b.index.AccountStatus(did)
	require.NoError(t, err)
	return st
}

// waitSweepFinished waits until sweep id has finished and returns it.
func (b *bundle) waitSweepFinished(t *testing.T, id int64) Sweep {
	t.Helper()
	var got Sweep
	await.Until(t, 60*time.Second, "the sweep to finish", func() (bool, any) {
		sweeps, err := b.backfill.Sweeps(context.Background())
		require.NoError(t, err)
		for _, s := range sweeps {
			if s.ID == id {
				got = s
				return s.FinishedAt != nil, s
			}
		}
		return false, sweeps
	})
	return got
}

// A sweep of the relay's account list (which, like indigo's, lists only its active accounts)
// lists again the hidden accounts it holds active (and re-learns them from their PDS), asks
// about each account of the index it did not list and removes the deleted, hides the taken
// down, and re-learns every active account whose repo changed since the floor: a record
// delete the stream never told is recovered, a repo that did not change is not asked about.
// The relay pages two accounts at a time, fails once and lists an invalid DID. The index is
// then compared with the truth as sets.
func TestAccountSweepBringsTheIndexInLineWithTheRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	const post, like, follow = "app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"
	d := testrelay.DIDs("sweep", 6)
	alice, bob, carol, dave, erin, frank := d[0], d[1], d[2], d[3], d[4], d[5]
	// The index as a backfill from a source that never removes left it.
	_, err := b.index.AddPairs([]rocksindex.Pair{{Collection: post, DID: alice}, {Collection: like, DID: alice},
		{Collection: post, DID: bob}, {Collection: post, DID: carol}, {Collection: post, DID: dave}, {Collection: post, DID: erin}})
	require.NoError(t, err)
	require.NoError(t, b.index.SetAccountStatus(dave, "deactivated"))

	// Erin's and dave's repos last changed before the floor; everything after it the stream
	// never applied.
	b.account(t, erin, fakerelay.Create(post, "1"))
	b.stream.HoldRepo(dave, syntax.NewTIDFromTime(time.Now().Add(-time.Hour), 0).String())
	time.Sleep(2 * time.Millisecond)
	floor := time.Now()
	time.Sleep(2 * time.Millisecond)
	a := b.account(t, alice, fakerelay.Create(post, "1"), fakerelay.Create(like, "1"))
	_, err = b.stream.Commit(a, fakerelay.Delete(like, "1")) // her last like
	require.NoError(t, err)
	b.account(t, bob, fakerelay.Create(post, "1"))
	_, err = b.stream.AccountStatus(bob, false, "deleted")
	require.NoError(t, err)
	b.account(t, carol, fakerelay.Create(post, "1"))
	_, err = b.stream.AccountStatus(carol, false, "takendown")
	require.NoError(t, err)
	_, err = b.stream.AccountStatus(dave, true, "")
	require.NoError(t, err)
	_, err = b.stream.AccountStatus(frank, false, "deleted") // never in the index: nothing to do
	require.NoError(t, err)
	b.stream.HoldRepo("not a did", "2222222222222")
	b.net.AddAccount(alice, post)
	b.net.AddAccount(dave, post, follow) // followed while deactivated here
	b.net.AddAccount(erin)               // asked, it would say erin has no post
	b.stream.ListReposPageMax(2)
	b.stream.FailListRepos(1)

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), &floor)
	require.NoError(t, err)
	got := b.waitSweepFinished(t, sw.ID)
	require.NotNil(t, got.WalkedAt)
	require.NotNil(t, got.UnlistedAt)
	require.Equal(t, int64(3), got.Pages, "erin, dave, alice and the invalid DID listed, 2 a page, then an empty page")
	require.Equal(t, int64(4), got.Repos)
	require.Equal(t, int64(1), got.Skipped, "the invalid DID")
	require.Equal(t, int64(2), got.UnlistedAsked, "bob and carol: the index's accounts the relay did not list")
	require.Equal(t, int64(3), got.StatusesChanged, "dave listed again, bob deleted, carol taken down")
	require.Equal(t, int64(1), got.AccountsRemoved, "bob")
	require.Equal(t, int64(2), got.ChecksQueued, "alice (changed), dave (listed again)")
	require.Empty(t, got.LastError, "the failed page was asked again")
	job, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind))
	require.NoError(t, err)
	require.Len(t, job.Jobs, 1)
	require.NotEmpty(t, job.Jobs[0].Errors, "the relay's error was a failed attempt")

	b.requireListed(t, map[string][]string{post: {alice, dave, erin}, follow: {dave}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, bob))
	require.Empty(t, b.status(t, frank), "not in the index: not asked about")
	require.Equal(t, "takendown", b.status(t, carol))
	require.Empty(t, b.status(t, dave))
	require.Zero(t, b.net.Requests(erin), "a repo unchanged since the floor is not asked about")
	gone, err := b.index.Removed(like, alice)
	require.NoError(t, err)
	require.True(t, gone, "the removal leaves its tombstone: the refresh's pages cannot put it back")
	unlisted, _, err := b.index.UnlistedAfter(sw.ID, "", 100, 100)
	require.NoError(t, err)
	require.Len(t, unlisted, 4, "the sweep forgot what its relay listed once it finished")
}

// A gap's sweep is part of its repair: the gap closes only once its refresh is complete and
// its sweep has finished, and then the index equals the truth as sets, removals and statuses
// the gap carried included (the refresh alone would have kept them all), and an account that
// joined and was deleted within the gap, which only the refresh's pages bring in.
func TestStreamGapSweepRecoversWhatTheRefreshCannot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, gapRepair: true})
	const post, like = "app.bsky.feed.post", "app.bsky.feed.like"
	d := testrelay.DIDs("gapsweep", 5)
	alice, bob, carol, dave, erin := d[0], d[1], d[2], d[3], d[4]
	b.relay.Append(post, alice, bob, carol)
	b.relay.Append(like, alice)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post, like))
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	first := b.waitDone(t, 30*time.Second).LastRun.ID
	// The stream stood at seq 41 when it was last live.
	require.NoError(t, queries.FirehoseCursorSet(ctx, b.pool, pgstore.FirehoseCursorSetParams{Relay: b.stream.URL(), Seq: 41}))

	// The gap: alice deleted her last like, bob his account, carol was taken down, dave
	// joined and posted; the source (like bsky.network) removes nothing and adds dave.
	a := b.account(t, alice, fakerelay.Create(post, "1"), fakerelay.Create(like, "1"))
	_, err = b.stream.Commit(a, fakerelay.Delete(like, "1"))
	require.NoError(t, err)
	b.account(t, bob, fakerelay.Create(post, "1"))
	_, err = b.stream.AccountStatus(bob, false, "deleted")
	require.NoError(t, err)
	b.account(t, carol, fakerelay.Create(post, "1"))
	_, err = b.stream.AccountStatus(carol, false, "takendown")
	require.NoError(t, err)
	b.account(t, dave, fakerelay.Create(post, "1"))
	b.relay.Append(post, dave)
	// Erin joined and left within the gap: only the refresh brings her in.
	b.account(t, erin, fakerelay.Create(post, "1"))
	_, err = b.stream.AccountStatus(erin, false, "deleted")
	require.NoError(t, err)
	b.relay.Append(post, erin)
	b.net.AddAccount(alice, post)
	b.net.AddAccount(dave, post)

	b.net.Hold() // the checks wait until the refresh is done
	release := holdPages(b)
	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 41, GapOutdatedCursor, "cursor too old")
	require.NoError(t, err)
	sw, err := queries.SweepOfGap(ctx, b.pool, &gap.ID)
	require.NoError(t, err)
	require.NotNil(t, sw.RevsAfter, "the gap knows when the stream was last live")
	require.WithinDuration(t, time.Now().Add(-sweepRevMargin), *sw.RevsAfter, time.Minute)
	// The relay's list is walked while the refresh pages; the index's accounts only after.
	await.Until(t, 30*time.Second, "the relay's list to be walked", func() (bool, any) {
		got, err := queries.SweepGet(ctx, b.pool, sw.ID)
		require.NoError(t, err)
		return got.WalkedAt != nil, got
	})
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		got, err := queries.SweepGet(ctx, b.pool, sw.ID)
		require.NoError(t, err)
		require.Nil(t, got.UnlistedAt, "the index's accounts wait for the refresh")
	}
	release()

	await.Until(t, 30*time.Second, "the refresh to start and end", func() (bool, any) {
		st, err := b.backfill.Status(ctx)
		require.NoError(t, err)
		return st.LastRun != nil && st.LastRun.ID != first && !st.Running && st.Completed == 2, st
	})
	gaps, err := b.backfill.Gaps(ctx)
	require.NoError(t, err)
	require.Nil(t, gaps[0].RepairedAt, "every collection is complete, but the sweep's checks wait")
	b.net.Release()
	b.waitGapRepaired(t, gap.ID)
	done, err := queries.SweepGet(ctx, b.pool, sw.ID)
	require.NoError(t, err)
	require.NotNil(t, done.FinishedAt)
	b.requireListed(t, map[string][]string{post: {alice, dave}})
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, bob))
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, erin), "asked about after the refresh brought her in")
	require.Equal(t, "takendown", b.status(t, carol))
}

// An unfinished sweep whose job stopped (its retries ran out, or an operator cancelled it in
// River UI) is resumed by Retry, once; a live one is left alone.
func TestRetryResumesAStoppedSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	_, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	res, err := b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Sweeps, "its job is live")
	jobs, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind))
	require.NoError(t, err)
	require.Len(t, jobs.Jobs, 1)
	_, err = b.backfill.River.JobCancel(ctx, jobs.Jobs[0].ID)
	require.NoError(t, err)
	res, err = b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Sweeps)
	res, err = b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Sweeps)
}

// A status the sweep could not write because the account was written after its question (a
// stream event of it, or of another account in its stamp slot) is asked about again and
// written under a new reading of the clock; an account the stream keeps writing while the
// sweep asks is left as the stream wrote it, and counted as skipped.
func TestSweepAsksAgainAboutAnAccountWrittenAfterItsQuestion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	const post = "app.bsky.feed.post"
	d := testrelay.DIDs("askagain", 2)
	carol, dan := d[0], d[1]
	_, err := b.index.AddPairs([]rocksindex.Pair{{Collection: post, DID: carol}, {Collection: post, DID: dan}})
	require.NoError(t, err)
	for _, did := range d {
		_, err = b.stream.AccountStatus(did, false, "takendown")
		require.NoError(t, err)
	}
	answers := 0
	b.backfill.afterSweepAnswer = func() {
		answers++
		pairs := []rocksindex.Pair{{Collection: post, DID: dan}} // the stream keeps writing dan
		if answers == 2 {
			pairs = append(pairs, rocksindex.Pair{Collection: post, DID: carol}) // and carol once, when asked
		}
		_, err := b.index.AddPairs(pairs)
		require.NoError(t, err)
	}
	require.NoError(t, b.backfill.StartWorkers(ctx))
	t.Cleanup(func() {
		stop, cancel := context.WithCancel(ctx)
		cancel()
		b.backfill.StopWorkers(stop, 10*time.Second)
	})
	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, "takendown", b.status(t, carol), "asked again, and written")
	require.Empty(t, b.status(t, dan), "left as the stream wrote it")
	require.Equal(t, int64(1), got.StatusesChanged)
	require.Equal(t, int64(1), got.Skipped)
	require.Equal(t, 1+2+2+1+1, answers, "the (empty) page, carol and dan, both again, then dan twice: three asks again")
}

// A sweep's check of an account that already has one live (the stream's, untagged) is a
// follow-up of its own that carries the sweep's tag, so the sweep waits for it; asking again
// (a page applied twice) adds nothing.
func TestSweepCheckBesideALiveStreamCheckIsItsOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	did := testrelay.DIDs("tagged", 1)[0]
	require.NoError(t, b.backfill.EnqueueVerifyRepo(ctx, did))
	w := &AccountSweepWorker{b: b.backfill}
	sw := &pgstore.AccountSweep{ID: 9}
	require.NoError(t, w.enqueueChecks(ctx, sw, []string{did}))
	require.NoError(t, w.enqueueChecks(ctx, sw, []string{did}))
	res, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(VerifyRepoKind))
	require.NoError(t, err)
	require.Len(t, res.Jobs, 2)
	require.Empty(t, res.Jobs[0].Tags)
	require.Equal(t, []string{sweepTag(9)}, res.Jobs[1].Tags)
}

// A sweep's retry backs off with its failures in a row, which a page applied resets, not with
// every error of its life.
func TestSweepBacksOffWithItsFailuresInARow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{noStart: true})
	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	w := &AccountSweepWorker{b: b.backfill}
	job := &river.Job[AccountSweepArgs]{JobRow: &rivertype.JobRow{Attempt: 40}, Args: AccountSweepArgs{SweepID: sw.ID}}
	for range 3 {
		require.NoError(t, queries.SweepFailed(ctx, b.pool, pgstore.SweepFailedParams{ID: sw.ID, LastError: "down"}))
	}
	wait := time.Until(w.NextRetry(job))
	require.Greater(t, wait, 3*time.Second, "3 in a row: 4 to 8 s")
	require.Less(t, wait, 9*time.Second, "not the 40th attempt's 15 minutes")
	_, err = queries.SweepAdvance(ctx, b.pool, pgstore.SweepAdvanceParams{ID: sw.ID, NextCursor: "1"})
	require.NoError(t, err)
	require.Less(t, time.Until(w.NextRetry(job)), 2*time.Second, "a page applied starts again from 1 s")
}

// A relay that does not serve listRepos at all stops the sweep at once, unfinished, with an
// error that says so, instead of asking again for days.
func TestSweepOfARelayWithoutAnAccountListStops(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	sw, err := b.backfill.StartSweep(ctx, b.relay.URL, nil) // a source, not a relay: 404
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "the sweep's job to stop", func() (bool, any) {
		res, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind))
		require.NoError(t, err)
		return len(res.Jobs) == 1 && res.Jobs[0].State == rivertype.JobStateCancelled, res.Jobs
	})
	got, err := queries.SweepGet(ctx, b.pool, sw.ID)
	require.NoError(t, err)
	require.Nil(t, got.FinishedAt)
	require.Contains(t, got.LastError, "does not serve com.atproto.sync.listRepos")
	require.NotContains(t, got.LastError, "\n")
}

// An open gap recorded before sweeps existed gets its sweep from its repair job, and waits for
// it like any other.
func TestAGapFromBeforeSweepsGetsOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, gapRepair: true, noStart: true})
	b.relay.Append("app.bsky.feed.post", testrelay.DIDs("old", 3)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("app.bsky.feed.post"))
	gap, err := b.backfill.RecordGap(ctx, b.stream.URL(), 7, GapOutdatedCursor, "")
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "DELETE FROM account_sweeps") // as before the upgrade
	require.NoError(t, err)
	w := &RepairGapWorker{b: b.backfill}
	require.Error(t, w.Work(ctx, &river.Job[RepairGapArgs]{JobRow: &rivertype.JobRow{}, Args: RepairGapArgs{GapID: gap.ID}}),
		"it snoozes after starting the refresh")
	sw, err := queries.SweepOfGap(ctx, b.pool, &gap.ID)
	require.NoError(t, err, "the gap has a sweep again")
	require.Nil(t, sw.FinishedAt)
}
