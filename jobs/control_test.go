package jobs

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/testrelay"
)

// slowRun starts a run over three collections that takes a while: 210 DIDs each, 7 per page,
// 30 ms between pages.
func slowRun(t *testing.T) *bundle {
	t.Helper()
	b := setup(t, setupOpts{lexiconList: true, pagePause: 30 * time.Millisecond})
	names := []string{"com.example.a", "com.example.b", "com.example.c"}
	for _, n := range names {
		b.relay.Append(n, testrelay.DIDs(n[len(n)-1:], 210)...)
	}
	b.relay.SetLLMsTxt(testrelay.LexiconList(names...))
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	return b
}

func (b *bundle) waitImported(t *testing.T, atLeast int64) Status {
	t.Helper()
	var st Status
	await.Until(t, 30*time.Second, fmt.Sprintf("%d DIDs imported", atLeast), func() (bool, any) {
		var err error
		st, err = b.backfill.Status(context.Background())
		require.NoError(t, err)
		return st.TotalImported >= atLeast, st.TotalImported
	})
	return st
}

func TestCancelKeepsCursorsAndALaterStartResumes(t *testing.T) {
	t.Parallel()
	b := slowRun(t)
	b.waitImported(t, 30)

	res, err := b.backfill.Cancel(context.Background())
	require.NoError(t, err)
	require.NotZero(t, res.RunID)
	require.GreaterOrEqual(t, res.CancelledJobs, 2, "the run and at least one chain")
	st := b.waitDone(t, 20*time.Second)
	require.Less(t, st.TotalImported, int64(630))
	require.NotNil(t, st.LastRun.CancelledAt)
	for _, c := range st.Collections {
		if !c.Completed && c.Pages > 0 {
			require.NotEmpty(t, c.Cursor, "the cursor is kept")
		}
	}
	// Nothing pages after a cancel: River only runs live jobs, and no page job is live.
	live, err := liveJobs(context.Background(), b.backfill.River, PageKind)
	require.NoError(t, err)
	require.Empty(t, live, "no chain is left to page")

	_, err = b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st = b.waitDone(t, 30*time.Second)
	require.Equal(t, 3, st.Completed)
	require.EqualValues(t, 630, st.TotalImported, "resumed from the cursors, nothing counted twice")
	for _, c := range st.Collections {
		b.requireIndexed(t, c.Collection, b.relay.Collection(c.Collection))
	}
}

func TestPauseHoldsPagingAndResumeFinishes(t *testing.T) {
	t.Parallel()
	b := slowRun(t)
	b.waitImported(t, 14)
	events, unsubscribe := b.backfill.River.Subscribe(river.EventKindQueuePaused)
	defer unsubscribe()
	require.NoError(t, b.backfill.Pause(context.Background()))
	// The pause has reached this process's page producer once it says so: from then on it
	// fetches no job of the queue. (Pause itself only marks the queue in Postgres.)
	waitQueuePaused(t, events, QueuePages)
	// Pages already running finish.
	await.Until(t, 10*time.Second, "the running pages to finish", func() (bool, any) {
		res, err := b.backfill.River.JobList(context.Background(),
			river.NewJobListParams().Kinds(PageKind).States(rivertype.JobStateRunning))
		require.NoError(t, err)
		return len(res.Jobs) == 0, fmt.Sprintf("%d running", len(res.Jobs))
	})
	st, err := b.backfill.Status(context.Background())
	require.NoError(t, err)
	require.True(t, st.Paused)
	require.True(t, st.Running, "a paused run is still live")
	// Nothing pages while paused, read from the job rows rather than watched over a window:
	// every chain's next page waits, available, in the queue the producer no longer fetches.
	live, err := liveJobs(context.Background(), b.backfill.River, PageKind)
	require.NoError(t, err)
	require.NotEmpty(t, live, "the chains wait for the resume")
	for _, j := range live {
		require.Equal(t, rivertype.JobStateAvailable, j.State, "page job %d", j.ID)
		require.Equal(t, QueuePages, j.Queue, "page job %d", j.ID)
	}

	require.NoError(t, b.backfill.Resume(context.Background()))
	st = b.waitDone(t, 30*time.Second)
	require.False(t, st.Paused)
	require.EqualValues(t, 630, st.TotalImported)
}

// waitQueuePaused waits for the producer of queue to report its pause.
func waitQueuePaused(t *testing.T, events <-chan *river.Event, queue string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Queue != nil && e.Queue.Name == queue {
				return
			}
		case <-timeout:
			t.Fatalf("queue %s was never reported paused", queue)
		}
	}
}

func TestResetRepagesOneCollectionFromScratch(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.r", testrelay.DIDs("r", 20)...)
	b.relay.Append("com.example.keep", testrelay.DIDs("k", 5)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.r", "com.example.keep"))
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	// The index picked up an entry the source no longer serves; the source grew meanwhile.
	require.NoError(t, b.index.Add("com.example.r", []string{"did:plc:stalestalestalestalestale"}))
	b.relay.Append("com.example.r", testrelay.DIDs("late", 4)...)

	res, err := b.backfill.Reset(context.Background(), "com.example.r")
	require.NoError(t, err)
	require.NotZero(t, res.JobID)
	require.False(t, res.AlreadyRunning)
	st := b.waitDone(t, 30*time.Second)
	require.EqualValues(t, 24, statusOf(t, st, "com.example.r").Imported)
	require.EqualValues(t, 21, statusOf(t, st, "com.example.r").ResetRemoved, "the 20 paged DIDs and the stale one")
	require.False(t, statusOf(t, st, "com.example.r").Resetting)
	require.EqualValues(t, 5, statusOf(t, st, "com.example.keep").Imported, "other collections untouched")
	b.requireIndexed(t, "com.example.r", b.relay.Collection("com.example.r"))

	_, err = b.backfill.Reset(context.Background(), "com.example.nope")
	require.ErrorIs(t, err, ErrNoSuchCollection)
}

func TestRetryRestartsAStoppedChain(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.s", testrelay.DIDs("s", 20)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.s"))
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if c := r.URL.Query().Get("cursor"); c != "" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"repos":[{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}],"cursor":%q}`, c)
			return true
		}
		return false
	})
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 30*time.Second)
	require.NotEmpty(t, statusOf(t, st, "com.example.s").Error)

	b.relay.Intercept(nil) // the source is fixed
	res, err := b.backfill.Retry(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.Collections)
	st = b.waitDone(t, 30*time.Second)
	cs := statusOf(t, st, "com.example.s")
	require.True(t, cs.Completed)
	require.EqualValues(t, 20, cs.Imported)
	require.Empty(t, cs.Error)

	res, err = b.backfill.Retry(context.Background())
	require.NoError(t, err)
	require.Zero(t, res.Collections, "nothing left to retry")
}

func TestCollectionDetail(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.d", testrelay.DIDs("d", 30)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.d"))
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	d, err := b.backfill.Collection(context.Background(), "com.example.d")
	require.NoError(t, err)
	require.True(t, d.Completed)
	require.EqualValues(t, 30, d.Imported)
	require.EqualValues(t, 5, d.Pages) // 4 full pages of 7, then 2
	require.NotNil(t, d.FirstPageAt)
	require.NotNil(t, d.LastPageAt)
	require.Positive(t, d.DIDsPerSec)
	require.NotEmpty(t, d.Cursor, "the detail keeps the last cursor")
	require.Nil(t, d.Chain, "no live chain once complete")

	_, err = b.backfill.Collection(context.Background(), "com.example.none")
	require.ErrorIs(t, err, ErrNoSuchCollection)
}
