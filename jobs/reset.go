package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/rocksindex"
)

const (
	// resetJobTimeout bounds one reset: deleting a 30M-DID collection's cbr keys and
	// compacting its rbc range takes minutes, not hours. A reset cut short runs again from
	// the start (the deletes are idempotent).
	resetJobTimeout  = 30 * time.Minute
	resetMaxAttempts = 10
)

// ResetResult says which job resets the collection.
type ResetResult struct {
	Collection string `json:"collection"`
	JobID      int64  `json:"job_id" doc:"The River job removing the collection's DIDs; colindex collection NSID shows its progress."`
	// AlreadyRunning is true when a reset of this collection was already live: that one
	// answers this request too.
	AlreadyRunning bool `json:"already_running" doc:"True when a reset of this collection was already under way; nothing new was started."`
}

// Reset starts one collection over, in the background: the row at once claims nothing and is
// marked complete and resetting (so no start, retry or page in flight moves it), then a
// reset job cancels the collection's chain, removes its DIDs from the index, and reopens the
// row with its first page enqueued in the same transaction. A second reset while one is live
// is answered with the live one: two resets never interleave.
func (b *Backfill) Reset(ctx context.Context, collection string) (ResetResult, error) {
	tx, err := b.Pool.Begin(ctx)
	if err != nil {
		return ResetResult{}, fmt.Errorf("reset %s: %w", collection, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	// The UPDATE takes the row's lock: concurrent resets of one collection queue here, and
	// the second sees the first's job below.
	row, err := queries.ProgressResetBegin(ctx, tx, collection)
	if errors.Is(err, pgx.ErrNoRows) {
		return ResetResult{}, ErrNoSuchCollection
	}
	if err != nil {
		return ResetResult{}, fmt.Errorf("reset %s: %w", collection, err)
	}
	res, err := b.River.InsertTx(ctx, tx, ResetArgs{Collection: collection, Generation: row.ResetGeneration}, nil)
	if err != nil {
		return ResetResult{}, fmt.Errorf("enqueue reset of %s: %w", collection, err)
	}
	out := ResetResult{Collection: collection, JobID: res.Job.ID}
	if res.UniqueSkippedAsDuplicate {
		// A reset is live: roll back, so the row keeps the generation that reset carries.
		out.AlreadyRunning = true
		return out, nil
	}
	if err := b.leavingComplete(func() error { return tx.Commit(ctx) }); err != nil {
		return ResetResult{}, fmt.Errorf("reset %s: %w", collection, err)
	}
	return out, nil
}

// ResetWorker does a reset's slow part: the chain stops, the DIDs leave the index, and the
// row reopens, conditional on the reset's own generation.
type ResetWorker struct {
	river.WorkerDefaults[ResetArgs]
	Pool  *pgxpool.Pool
	Index *rocksindex.Index
	// PageTimeout is a page job's timeout: how long a cancelled chain may take to stop.
	PageTimeout time.Duration
	// PageMaxAttempts is the retry budget of the first page the reset enqueues.
	PageMaxAttempts int

	// sweepRelay is Config.SweepAfterBackfill: the chain the reset begins asks for the watcher
	// of the sweep after the backfill (sweep_after.go).
	sweepRelay string

	// beforeFinish, when set (tests only), runs after the delete and before the row reopens;
	// an error from it fails the attempt there, as a crash would.
	beforeFinish func(ctx context.Context, collection string) error
}

func (w *ResetWorker) Timeout(*river.Job[ResetArgs]) time.Duration { return resetJobTimeout }

func (w *ResetWorker) Work(ctx context.Context, job *river.Job[ResetArgs]) error {
	coll, gen := job.Args.Collection, job.Args.Generation
	row, err := queries.ProgressGet(ctx, w.Pool, coll)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("no progress row for %s", coll))
	}
	if err != nil {
		return fmt.Errorf("load progress of %s: %w", coll, err)
	}
	if row.ResetGeneration != gen || row.ResettingSince == nil {
		return nil // overtaken (cannot happen while resets are unique, but never reopen a row twice)
	}
	// Nothing may write this collection's index entries once the delete starts. The row
	// is complete, so no start, retry or page commit enqueues a page; stop what is live.
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	if err := cancelChain(ctx, client, coll, w.PageTimeout); err != nil {
		return err
	}
	removed, err := w.Index.DeleteCollection(ctx, coll, func(n int) {
		_ = queries.ProgressResetProgress(ctx, w.Pool, pgstore.ProgressResetProgressParams{
			Collection: coll, Generation: gen, Removed: int64(n),
		})
	})
	if err != nil {
		return fmt.Errorf("reset %s: removed %d DIDs, then: %w", coll, removed, err)
	}
	if w.beforeFinish != nil {
		if err := w.beforeFinish(ctx, coll); err != nil {
			return err
		}
	}

	tx, err := w.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("reset %s: %w", coll, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	reopened, err := queries.ProgressResetFinish(ctx, tx, pgstore.ProgressResetFinishParams{
		Collection: coll, Generation: gen, Removed: int64(removed),
	})
	if err != nil {
		return fmt.Errorf("reset %s: %w", coll, err)
	}
	if reopened == 0 {
		return nil
	}
	// In the transaction that reopens the row: an incomplete collection never lacks a chain.
	first := firstPage(row, w.PageMaxAttempts)
	if _, err := client.InsertTx(ctx, tx, first.Args, first.InsertOpts); err != nil {
		return fmt.Errorf("enqueue %s: %w", coll, err)
	}
	if err := askSweepAfterBackfill(ctx, client, tx, w.sweepRelay); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("reset %s: %w", coll, err)
	}
	return nil
}
