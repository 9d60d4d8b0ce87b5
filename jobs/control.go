package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/colindex/colindex/internal/pgstore"
)

// ErrNoSuchCollection is returned for a collection without a progress row.
var ErrNoSuchCollection = errors.New("no such collection")

// CancelResult says what Cancel stopped.
type CancelResult struct {
	CancelledJobs int   `json:"cancelled_jobs" doc:"Run and page jobs cancelled."`
	RunID         int64 `json:"run_id,omitempty" doc:"The run that was cancelled, when one was live."`
	// StillLive lists the cancelled jobs that had not stopped when Cancel gave up waiting.
	StillLive []LiveJob `json:"still_live,omitempty" doc:"Cancelled jobs still running when the wait ended (a page job's timeout): usually a job whose process died, which River's rescuer ends. A start is refused until they have stopped."`
}

// Cancel stops the live run and every page chain. Cursors and counts stay as committed, so a
// later start resumes each collection where it stopped. A page in flight either commits
// before it notices or rolls back; a committed link's successor is cancelled on the next
// pass. Cancel returns once nothing is live, or after a page job's timeout, reporting what is
// still live (a job running in a process that died stays live until River's rescuer ends it).
func (b *Backfill) Cancel(ctx context.Context) (CancelResult, error) {
	var res CancelResult
	cancelled := map[int64]bool{}
	deadline := time.Now().Add(cmp.Or(b.cancelWait, b.pageTimeout()+5*time.Second))
	for {
		live, err := liveJobs(ctx, b.River, RunKind, PageKind)
		if err != nil {
			return res, err
		}
		if len(live) == 0 || time.Now().After(deadline) {
			res.CancelledJobs = len(cancelled)
			for _, j := range live {
				res.StillLive = append(res.StillLive, liveJob(j))
			}
			return res, nil
		}
		for _, j := range live {
			if cancelled[j.ID] {
				continue // signalled; waiting for its worker to return
			}
			if j.Kind == RunKind {
				if id, ok := runID(j); ok {
					res.RunID = id
					if err := queries.RunCancel(ctx, b.Pool, id); err != nil {
						return res, fmt.Errorf("cancel run %d: %w", id, err)
					}
				}
			}
			if _, err := b.River.JobCancel(ctx, j.ID); err != nil && !errors.Is(err, river.ErrNotFound) {
				return res, fmt.Errorf("cancel job %d: %w", j.ID, err)
			}
			cancelled[j.ID] = true
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Pause stops new page fetches; pages in flight finish. The pause is stored in Postgres, so
// it survives restarts, and the run stays live until Resume.
func (b *Backfill) Pause(ctx context.Context) error {
	if err := b.River.QueuePause(ctx, QueuePages, nil); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	return nil
}

// Resume undoes Pause.
func (b *Backfill) Resume(ctx context.Context) error {
	if err := b.River.QueueResume(ctx, QueuePages, nil); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}

// Paused reports whether paging is paused.
func (b *Backfill) Paused(ctx context.Context) (bool, error) {
	q, err := b.River.QueueGet(ctx, QueuePages)
	if errors.Is(err, river.ErrNotFound) {
		return false, nil // the queue row appears when the first client starts working it
	}
	if err != nil {
		return false, fmt.Errorf("queue %s: %w", QueuePages, err)
	}
	return q.PausedAt != nil, nil
}

// RetryResult says how many chains Retry restarted.
type RetryResult struct {
	Collections int `json:"collections" doc:"Incomplete collections whose chain had stopped and now pages again."`
	Sweeps      int `json:"sweeps" doc:"Unfinished account sweeps whose job had stopped (its retries ran out) and now run again, from where they stopped."`
}

// Retry restarts the chain of every incomplete collection that has none live, such as one
// whose retries ran out or that a source stopped with an error, and the job of every
// unfinished account sweep that has none live. Live chains and sweeps are left alone.
func (b *Backfill) Retry(ctx context.Context) (RetryResult, error) {
	sweeps, err := b.resumeSweeps(ctx)
	if err != nil {
		return RetryResult{}, err
	}
	rows, err := queries.ProgressListIncomplete(ctx, b.Pool)
	if err != nil {
		return RetryResult{}, fmt.Errorf("list incomplete collections: %w", err)
	}
	if len(rows) == 0 {
		return RetryResult{Sweeps: sweeps}, nil
	}
	orderLargestFirst(rows, b.Index)
	params := make([]river.InsertManyParams, len(rows))
	for i, row := range rows {
		params[i] = firstPage(row, b.maxAttempts())
	}
	var results []*rivertype.JobInsertResult
	err = pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		var err error
		if results, err = b.River.InsertManyTx(ctx, tx, params); err != nil {
			return fmt.Errorf("enqueue pages: %w", err)
		}
		return askSweepAfterBackfill(ctx, b.River, tx, b.sweepAfterBackfill)
	})
	if err != nil {
		return RetryResult{}, err
	}
	res := RetryResult{Sweeps: sweeps}
	for _, r := range results {
		if !r.UniqueSkippedAsDuplicate {
			res.Collections++
		}
	}
	return res, nil
}

// cancelChain cancels a collection's live page job and waits until none is live, so nothing
// writes to its index entries afterwards. A job whose process died stays live until River's
// rescuer ends it, so the wait is bounded by a page job's timeout.
func cancelChain(ctx context.Context, client *river.Client[pgx.Tx], collection string, pageTimeout time.Duration) error {
	wait := pageTimeout + 5*time.Second
	deadline := time.Now().Add(wait)
	for {
		live, err := chainJobs(ctx, client, collection)
		if err != nil {
			return err
		}
		if len(live) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chain of %s did not stop within %s (job %d is %s)", collection, wait, live[0].ID, live[0].State)
		}
		// Cancelling a running job only signals its worker; it stops being live when the
		// worker returns, hence the wait.
		for _, j := range live {
			if _, err := client.JobCancel(ctx, j.ID); err != nil && !errors.Is(err, river.ErrNotFound) {
				return fmt.Errorf("cancel job %d: %w", j.ID, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CollectionDetail is one collection's progress with what an operator needs to judge it.
type CollectionDetail struct {
	CollectionStatus
	CreatedAt   time.Time  `json:"created_at" doc:"When the collection was first discovered."`
	FirstPageAt *time.Time `json:"first_page_at,omitempty" doc:"When its first page was committed."`
	DIDsPerSec  float64    `json:"dids_per_second" doc:"imported / (last_page_at - first_page_at): the average paging rate."`
	Chain       *ChainJob  `json:"chain,omitempty" doc:"The live page job, when the chain is live."`
}

// ChainJob is the River job carrying a collection's chain.
type ChainJob struct {
	ID        int64  `json:"id"`
	State     string `json:"state"`
	Attempt   int    `json:"attempt"`
	LastError string `json:"last_error,omitempty" doc:"The job's latest attempt error, as River recorded it."`
}

// Collection returns one collection's detail.
func (b *Backfill) Collection(ctx context.Context, collection string) (CollectionDetail, error) {
	row, err := queries.ProgressGet(ctx, b.Pool, collection)
	if errors.Is(err, pgx.ErrNoRows) {
		return CollectionDetail{}, ErrNoSuchCollection
	}
	if err != nil {
		return CollectionDetail{}, fmt.Errorf("load %s: %w", collection, err)
	}
	d := CollectionDetail{
		CollectionStatus: collectionStatus(row),
		CreatedAt:        row.CreatedAt,
		FirstPageAt:      row.FirstPageAt,
	}
	d.Cursor = row.Cursor // the detail always shows it, completed or not
	d.Indexed = b.Index.Count(collection)
	if row.FirstPageAt != nil && row.LastPageAt != nil {
		if span := row.LastPageAt.Sub(*row.FirstPageAt).Seconds(); span > 0 {
			d.DIDsPerSec = float64(row.ImportedCount) / span
		}
	}
	live, err := chainJobs(ctx, b.River, collection)
	if err != nil {
		return CollectionDetail{}, err
	}
	if len(live) > 0 {
		j := live[0]
		d.Chain = &ChainJob{ID: j.ID, State: string(j.State), Attempt: j.Attempt}
		if n := len(j.Errors); n > 0 {
			d.Chain.LastError = j.Errors[n-1].Error
		}
	}
	return d, nil
}

func collectionStatus(r pgstore.BackfillProgress) CollectionStatus {
	c := CollectionStatus{
		Collection: r.Collection,
		Source:     r.Source,
		Imported:   r.ImportedCount,
		Completed:  r.CompletedAt != nil,
		Skipped:    r.SkippedCount,
		Pages:      r.PagesFetched,
		Error:      r.LastError,
		LastPageAt: r.LastPageAt,

		Resetting:    r.ResettingSince != nil,
		ResetRemoved: r.ResetRemoved,
	}
	if !c.Completed {
		c.Cursor = r.Cursor
	}
	return c
}

// liveJobs lists every live job of the given kinds.
func liveJobs(ctx context.Context, client *river.Client[pgx.Tx], kinds ...string) ([]*rivertype.JobRow, error) {
	return listAll(ctx, client, river.NewJobListParams().Kinds(kinds...).States(liveStates...))
}

// chainJobs lists the live page jobs of one collection.
func chainJobs(ctx context.Context, client *river.Client[pgx.Tx], collection string) ([]*rivertype.JobRow, error) {
	return listAll(ctx, client, river.NewJobListParams().Kinds(PageKind).States(liveStates...).
		Where("args->>'collection' = @collection", river.NamedArgs{"collection": collection}))
}

func listAll(ctx context.Context, client *river.Client[pgx.Tx], params *river.JobListParams) ([]*rivertype.JobRow, error) {
	var out []*rivertype.JobRow
	params = params.First(10000)
	for {
		res, err := client.JobList(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, res.Jobs...)
		if len(res.Jobs) < 10000 {
			return out, nil
		}
		params = params.After(res.LastCursor)
	}
}

func runID(j *rivertype.JobRow) (int64, bool) {
	var args RunArgs
	if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
		return 0, false
	}
	return args.RunID, true
}
