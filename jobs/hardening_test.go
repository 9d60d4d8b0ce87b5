package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/source"
)

// requireRowMatchesIndex asserts that the collection's row claims exactly what the index
// holds, and that the index holds exactly the source's DIDs: the two compared as sets.
func (b *bundle) requireRowMatchesIndex(t *testing.T, collection string) {
	t.Helper()
	want := b.relay.Collection(collection)
	b.requireIndexed(t, collection, want)
	row, err := queries.ProgressGet(context.Background(), b.pool, collection)
	require.NoError(t, err)
	require.NotNil(t, row.CompletedAt, "%s is complete", collection)
	require.Nil(t, row.ResettingSince)
	require.EqualValues(t, len(want), row.ImportedCount, "%s: imported counts each DID once", collection)
}

// Two resets of one collection, a start and a retry all land while the first reset is
// between its delete and its last step: the second reset is answered with the first, the
// start and the retry leave the collection alone, and the end state is exact.
func TestOverlappingResetsStartsAndRetriesLeaveTheRowExact(t *testing.T) {
	t.Parallel()
	hold := make(chan struct{})
	reached := make(chan struct{}, 4)
	var finishes atomic.Int32
	b := setup(t, setupOpts{lexiconList: true, beforeResetFinish: func(ctx context.Context, _ string) error {
		finishes.Add(1)
		reached <- struct{}{}
		select {
		case <-hold:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	b.relay.Append("com.example.r", testrelay.DIDs("r", 30)...)
	b.relay.Append("com.example.o", testrelay.DIDs("o", 10)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.r", "com.example.o"))
	ctx := context.Background()
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	first, err := b.backfill.Reset(ctx, "com.example.r")
	require.NoError(t, err)
	waitFor(t, reached, "the reset job reached its last step")

	second, err := b.backfill.Reset(ctx, "com.example.r")
	require.NoError(t, err)
	require.True(t, second.AlreadyRunning)
	require.Equal(t, first.JobID, second.JobID)
	row, err := queries.ProgressGet(ctx, b.pool, "com.example.r")
	require.NoError(t, err)
	require.EqualValues(t, 1, row.ResetGeneration, "the refused reset changed nothing")
	require.NotNil(t, row.ResettingSince)

	b.relay.Append("com.example.r", testrelay.DIDs("late", 3)...)
	st, err := b.backfill.Status(ctx)
	require.NoError(t, err)
	require.True(t, statusOf(t, st, "com.example.r").Resetting)
	retried, err := b.backfill.Retry(ctx)
	require.NoError(t, err)
	require.Zero(t, retried.Collections, "a resetting collection is not incomplete")
	started, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	require.Zero(t, started.Collections, "a resetting collection is not paged by a start")

	close(hold)
	b.waitDone(t, 30*time.Second)
	require.EqualValues(t, 1, finishes.Load(), "one reset ran")
	b.requireRowMatchesIndex(t, "com.example.r")
	b.requireRowMatchesIndex(t, "com.example.o")
}

// A reset whose job fails half way (a crash) is retried by River and finishes exactly.
func TestResetJobCutShortIsRetriedAndFinishes(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int32
	b := setup(t, setupOpts{lexiconList: true, beforeResetFinish: func(context.Context, string) error {
		if attempts.Add(1) == 1 {
			return errors.New("killed before the row reopened")
		}
		return nil
	}})
	b.relay.Append("com.example.r", testrelay.DIDs("r", 25)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.r"))
	ctx := context.Background()
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	stale := "did:plc:stalestalestalestalestale"
	require.NoError(t, b.index.Add("com.example.r", []string{stale}))

	res, err := b.backfill.Reset(ctx, "com.example.r")
	require.NoError(t, err)
	job := b.waitJobState(t, res.JobID, rivertype.JobStateCompleted)
	require.Equal(t, 2, job.Attempt, "completed on its second attempt")
	b.waitDone(t, 30*time.Second)
	b.requireRowMatchesIndex(t, "com.example.r")
	colls, err := b.index.CollectionsOf(stale)
	require.NoError(t, err)
	require.Empty(t, colls, "the stale DID left both column families")
}

// insertOrphanPageJob writes a page job as a process that died mid-page leaves it: running,
// with no worker anywhere.
func (b *bundle) insertOrphanPageJob(t *testing.T, collection string) int64 {
	t.Helper()
	var id int64
	err := b.pool.QueryRow(context.Background(), `
		INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at, priority, metadata)
		VALUES (jsonb_build_object('collection', $1::text), $2, 12, $3, 'running', 1, now(), 1, '{}')
		RETURNING id`, collection, PageKind, QueuePages).Scan(&id)
	require.NoError(t, err)
	return id
}

// Cancel says which cancelled jobs are still running when it stops waiting, and a start is
// refused until they have stopped (a start in that window would skip their collections,
// which would then end with no chain).
func TestCancelReportsWhatIsStillLiveAndStartWaitsForIt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true, cancelWait: 300 * time.Millisecond})
	b.relay.Append("com.example.ghost", testrelay.DIDs("g", 10)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.ghost"))
	ctx := context.Background()
	orphan := b.insertOrphanPageJob(t, "com.example.ghost")

	res, err := b.backfill.Cancel(ctx)
	require.NoError(t, err)
	require.Len(t, res.StillLive, 1)
	require.Equal(t, orphan, res.StillLive[0].ID)
	require.Equal(t, "com.example.ghost", res.StillLive[0].Collection)
	require.Equal(t, "running", res.StillLive[0].State)

	_, err = b.backfill.Start(ctx, b.src)
	require.ErrorIs(t, err, ErrCancelPending)
	require.ErrorContains(t, err, fmt.Sprintf("job %d (com.example.ghost)", orphan))

	// River's rescuer ends it (here, as it would: cancelled); then a start pages everything.
	_, err = b.pool.Exec(ctx, `UPDATE river_job SET state = 'cancelled', finalized_at = now() WHERE id = $1`, orphan)
	require.NoError(t, err)
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	b.requireRowMatchesIndex(t, "com.example.ghost")
}

// A cancel that a page notices at its commit rolls the page back and is not recorded as the
// collection's error: it was the operator's decision.
func TestCancelNoticedAtCommitIsNotAnError(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.c", testrelay.DIDs("c", 30)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.c"))
	cancelled := make(chan int64, 1)
	var mu sync.Mutex // one request at a time tries to cancel; seen and done are under it
	seen, done := "no page with a cursor requested", false
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if r.URL.Query().Get("cursor") == "" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if done {
			return false
		}
		// The second page: cancel its job while it is in flight. A loaded machine can make
		// one listing fail or catch the chain between jobs, so ask again while the request
		// is in flight (100 tries, 2 s, were once not enough on a loaded clean-clone CI run);
		// and should the fetch end first, a refetch of the page gets its own chance.
		for tries := 1; r.Context().Err() == nil; tries++ {
			live, err := chainJobs(r.Context(), b.backfill.River, "com.example.c")
			if err == nil && len(live) == 1 {
				// Not the request's context: the cancel itself aborts the fetch, and under
				// load that can end the request before JobCancel returns its success.
				if _, err = b.backfill.River.JobCancel(context.Background(), live[0].ID); err == nil {
					done = true
					cancelled <- live[0].ID
					return false
				}
			}
			states := make([]string, len(live))
			for i, j := range live {
				states[i] = fmt.Sprintf("%d:%s", j.ID, j.State)
			}
			seen = fmt.Sprintf("try %d: live page jobs %v, error %v", tries, states, err)
			time.Sleep(20 * time.Millisecond)
		}
		seen += fmt.Sprintf("; then the request ended: %v", context.Cause(r.Context()))
		return false
	})
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	var id int64
	select {
	case id = <-cancelled:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("timed out waiting for the in-flight page to be cancelled; last seen: %s", seen)
	}
	b.waitDone(t, 30*time.Second)

	job, err := b.backfill.River.JobGet(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCancelled, job.State)
	st, err := b.backfill.Status(context.Background())
	require.NoError(t, err)
	cs := statusOf(t, st, "com.example.c")
	require.Empty(t, cs.Error, "a cancel is not a failure")
	require.EqualValues(t, 7, cs.Imported, "only the first page counted; the cancelled one rolled back")
	require.EqualValues(t, 1, cs.Pages)
}

// A lexicon list naming more collections than the cap adds only the cap's worth, in list
// order, and the run says how many it left out; a start may raise the cap.
func TestDiscoveryIsCappedAndTheOverflowReported(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	names := make([]string, 12)
	for i := range names {
		names[i] = fmt.Sprintf("com.example.n%02d", i)
	}
	b.relay.SetLLMsTxt(testrelay.LexiconList(names...))
	ctx := context.Background()
	res, err := b.backfill.StartWith(ctx, b.src, StartOptions{LexiconListMax: 5})
	require.NoError(t, err)
	require.Equal(t, 5, res.Discovered)
	require.Equal(t, 7, res.LexiconListDropped)
	st := b.waitDone(t, 30*time.Second)
	require.Equal(t, 7, st.LastRun.LexiconListDropped)
	got := make([]string, 0, len(st.Collections))
	for _, c := range st.Collections {
		got = append(got, c.Collection)
	}
	require.Equal(t, names[:5], got, "the first five of the list")

	res, err = b.backfill.Start(ctx, b.src) // the default cap is far above 12
	require.NoError(t, err)
	require.Equal(t, 12, res.Discovered)
	require.Zero(t, res.LexiconListDropped)
	require.Equal(t, DefaultLexiconListMax, 5000)
}

// A page job's timeout covers its own longest waits, and the rescuer waits just past it.
func TestPageJobTimeoutCoversItsWaits(t *testing.T) {
	t.Parallel()
	for _, pause := range []time.Duration{0, 100 * time.Millisecond, 10 * time.Second} {
		t.Run(pause.String(), func(t *testing.T) {
			t.Parallel()
			timeout := PageJobTimeout(pause)
			require.GreaterOrEqual(t, timeout, pause+BeforeFetchBudget+source.MaxFetchTime+time.Second)
			require.Greater(t, rescueAfter(timeout), timeout)
			require.LessOrEqual(t, rescueAfter(timeout), timeout+5*time.Second, "resume after a crash stays prompt")
			w := &PageWorker{Pause: pause}
			require.Equal(t, timeout, w.Timeout(&river.Job[PageArgs]{}))
		})
	}
	// The fetch's own parts, as the source client bounds them: two inline holds of a 429,
	// the rate-cap queue and the request.
	require.GreaterOrEqual(t, source.MaxFetchTime, source.RequestTimeout+4*time.Second)
}

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting: %s", what)
	}
	var zero T
	return zero
}

// River records a cancel request on a running job under the metadata key cancelRequested
// reads. The key is River's, not a public API: this fails loudly if an upgrade renames it.
func TestCancelRequestIsRecordedUnderTheKeyWeRead(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	id := b.insertOrphanPageJob(t, "com.example.k")
	job, err := b.backfill.River.JobGet(ctx, id)
	require.NoError(t, err)
	require.False(t, cancelRequested(job.Metadata))
	_, err = b.backfill.River.JobCancel(ctx, id)
	require.NoError(t, err)
	job, err = b.backfill.River.JobGet(ctx, id)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateRunning, job.State, "a running job stays running until its worker returns")
	require.True(t, cancelRequested(job.Metadata), "metadata: %s", job.Metadata)
}
