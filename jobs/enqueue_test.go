package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/testrelay"
)

// What a start, a retry and a reset enqueue, read back with River's own test helpers from
// the job rows, without workers taking them (but for the reset job's own insert, which only
// a worker makes). The collections are named so that the largest-first order (the
// known-large list ranks like above profile) is not also the alphabetical one.
const (
	largeColl = "app.bsky.feed.like"
	smallColl = "app.bsky.actor.profile"
)

// setupEnqueue is a backfill over largeColl and smallColl that has been started.
func setupEnqueue(t *testing.T, opts setupOpts) (*bundle, StartResult) {
	t.Helper()
	opts.lexiconList = true
	b := setup(t, opts)
	b.relay.Append(largeColl, testrelay.DIDs("l", 20)...)
	b.relay.Append(smallColl, testrelay.DIDs("p", 20)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(smallColl, largeColl))
	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	return b, res
}

// argsOf decodes a job row's args.
func argsOf[T any](t *testing.T, row *rivertype.JobRow) T {
	t.Helper()
	var out T
	require.NoError(t, json.Unmarshal(row.EncodedArgs, &out))
	return out
}

// firstPageOpts is what every chain's first page is inserted with.
func firstPageOpts(maxAttempts int, state rivertype.JobState) *rivertest.RequireInsertedOpts {
	return &rivertest.RequireInsertedOpts{
		Queue: QueuePages, Priority: priorityFirstPage, MaxAttempts: maxAttempts, State: state,
	}
}

// A start inserts the run's watcher, then one first page per incomplete collection, largest
// first; the run is unique by kind alone, a chain by its collection alone.
func TestStartEnqueuesTheRunThenFirstPagesLargestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, started := setupEnqueue(t, setupOpts{noStart: true, maxAttempts: 5})
	avail := rivertype.JobStateAvailable

	rows := rivertest.RequireManyInserted(ctx, t, riverpgxv5.New(b.pool), []rivertest.ExpectedJob{
		{Args: RunArgs{}, Opts: &rivertest.RequireInsertedOpts{Queue: QueueRuns, State: avail}},
		{Args: PageArgs{}, Opts: firstPageOpts(5, avail)},
		{Args: PageArgs{}, Opts: firstPageOpts(5, avail)},
	})
	require.Equal(t, RunArgs{RunID: started.RunID, Source: b.src.Name}, argsOf[RunArgs](t, rows[0]))
	require.Equal(t, PageArgs{Collection: largeColl, Source: b.src.Name}, argsOf[PageArgs](t, rows[1]))
	require.Equal(t, PageArgs{Collection: smallColl, Source: b.src.Name}, argsOf[PageArgs](t, rows[2]))
	for _, r := range rows {
		require.ElementsMatch(t, liveStates, r.UniqueStates, "%s holds its slot while live", r.Kind)
		require.NotEmpty(t, r.UniqueKey, r.Kind)
	}
	require.NotEqual(t, rows[1].UniqueKey, rows[2].UniqueKey, "one chain per collection")

	// Another link of a live chain, whatever its other args, is a duplicate; so is another
	// run's watcher, whatever its source.
	dup, err := b.backfill.River.Insert(ctx, PageArgs{Collection: largeColl, Source: "elsewhere", PrevPageAt: time.Now()}, nil)
	require.NoError(t, err)
	require.True(t, dup.UniqueSkippedAsDuplicate)
	require.Equal(t, rows[1].ID, dup.Job.ID)
	dup, err = b.backfill.River.Insert(ctx, RunArgs{RunID: started.RunID + 1, Source: "elsewhere"}, nil)
	require.NoError(t, err)
	require.True(t, dup.UniqueSkippedAsDuplicate)
	require.Equal(t, rows[0].ID, dup.Job.ID)
}

// A retry inserts a first page for an incomplete collection whose chain stopped, and none
// for one whose chain is live.
func TestRetryEnqueuesFirstPagesOfStoppedChainsOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, _ := setupEnqueue(t, setupOpts{noStart: true, maxAttempts: 5})

	res, err := b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Zero(t, res.Collections, "both chains are live")

	// largeColl's chain stops (its page job is cancelled before any worker took it).
	large := rivertest.RequireManyInserted(ctx, t, riverpgxv5.New(b.pool), []rivertest.ExpectedJob{
		{Args: PageArgs{}}, {Args: PageArgs{}},
	})[0]
	require.Equal(t, largeColl, argsOf[PageArgs](t, large).Collection)
	_, err = b.backfill.River.JobCancel(ctx, large.ID)
	require.NoError(t, err)

	res, err = b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.Collections)
	rows := rivertest.RequireManyInserted(ctx, t, riverpgxv5.New(b.pool), []rivertest.ExpectedJob{
		{Args: RunArgs{}},
		{Args: PageArgs{}, Opts: &rivertest.RequireInsertedOpts{State: rivertype.JobStateCancelled}},
		{Args: PageArgs{}, Opts: firstPageOpts(5, rivertype.JobStateAvailable)},
		{Args: PageArgs{}, Opts: firstPageOpts(5, rivertype.JobStateAvailable)},
	})
	require.Equal(t, PageArgs{Collection: largeColl, Source: b.src.Name}, argsOf[PageArgs](t, rows[3]))
	require.Equal(t, rows[1].UniqueKey, rows[3].UniqueKey, "the same chain, restarted")
}

// A reset inserts one reset job per collection, carrying the row's new generation; a second
// reset while it is live gets that job.
func TestResetEnqueuesOneResetJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, _ := setupEnqueue(t, setupOpts{noStart: true})

	res, err := b.backfill.Reset(ctx, largeColl)
	require.NoError(t, err)
	again, err := b.backfill.Reset(ctx, largeColl)
	require.NoError(t, err)
	require.True(t, again.AlreadyRunning)
	require.Equal(t, res.JobID, again.JobID)

	row, err := queries.ProgressGet(ctx, b.pool, largeColl)
	require.NoError(t, err)
	require.NotZero(t, row.ResetGeneration)
	job := rivertest.RequireInserted(ctx, t, riverpgxv5.New(b.pool), ResetArgs{}, &rivertest.RequireInsertedOpts{
		Queue: QueueMaintenance, MaxAttempts: resetMaxAttempts, State: rivertype.JobStateAvailable,
	})
	require.Equal(t, res.JobID, job.ID)
	require.Equal(t, ResetArgs{Collection: largeColl, Generation: row.ResetGeneration}, job.Args)
	require.ElementsMatch(t, liveStates, job.UniqueStates)
}

// The reset job cancels the collection's chain and, as it reopens the row, inserts a fresh
// first page: the collection pages again from the start. Pages are held at their fetch, so
// every chain stays where the test can see it.
func TestResetJobReplacesTheChainWithAFirstPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var atFetch atomic.Int32
	held := func(ctx context.Context) error { atFetch.Add(1); <-ctx.Done(); return ctx.Err() }
	b, _ := setupEnqueue(t, setupOpts{beforeFetch: held, maxAttempts: 5})
	// Both chains are held mid-page before the reset: a page that read its row only after the
	// reset marked it complete would end as completed, with nothing to page. River marks a
	// job running before its worker reads the row, so the wait is for the fetch itself.
	await.Until(t, 30*time.Second, "both first pages held at their fetch", func() (bool, any) {
		n := atFetch.Load()
		return n == 2, fmt.Sprintf("%d at their fetch", n)
	})

	res, err := b.backfill.Reset(ctx, largeColl)
	require.NoError(t, err)
	b.waitJobState(t, res.JobID, rivertype.JobStateCompleted)

	rows := rivertest.RequireManyInserted(ctx, t, riverpgxv5.New(b.pool), []rivertest.ExpectedJob{
		{Args: RunArgs{}},
		{Args: PageArgs{}, Opts: &rivertest.RequireInsertedOpts{State: rivertype.JobStateCancelled}},
		{Args: PageArgs{}},
		{Args: ResetArgs{}, Opts: &rivertest.RequireInsertedOpts{Queue: QueueMaintenance}},
		{Args: PageArgs{}, Opts: &rivertest.RequireInsertedOpts{Queue: QueuePages, Priority: priorityFirstPage, MaxAttempts: 5}},
	})
	require.Equal(t, largeColl, argsOf[PageArgs](t, rows[1]).Collection, "the old chain, cancelled")
	require.Equal(t, smallColl, argsOf[PageArgs](t, rows[2]).Collection, "the other chain, untouched")
	require.Equal(t, PageArgs{Collection: largeColl, Source: b.src.Name}, argsOf[PageArgs](t, rows[4]))
}
