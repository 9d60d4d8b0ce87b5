package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// runPollInterval is how often the run watcher looks for live page jobs. River's scheduler
// rounds a snooze up to its own tick (about 5 s), so the run ends within seconds of its last page.
const runPollInterval = 2 * time.Second

// RunWorker keeps a run's unique slot while any page job is live, then marks the run finished.
type RunWorker struct {
	river.WorkerDefaults[RunArgs]
	Pool *pgxpool.Pool
}

func (w *RunWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return err
	}
	live, err := anyLive(ctx, client, PageKind)
	if err != nil {
		return fmt.Errorf("run %d: %w", job.Args.RunID, err)
	}
	if live {
		return river.JobSnooze(runPollInterval)
	}
	tx, err := w.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", job.Args.RunID, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := queries.RunFinish(ctx, tx, job.Args.RunID); err != nil {
		return fmt.Errorf("finish run %d: %w", job.Args.RunID, err)
	}
	// A refresh with no collection to page closes its gaps here (pages close the others).
	if err := closeGaps(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("finish run %d: %w", job.Args.RunID, err)
	}
	return nil
}

// anyLive reports whether any job of the given kinds is live.
func anyLive(ctx context.Context, client *river.Client[pgx.Tx], kinds ...string) (bool, error) {
	res, err := client.JobList(ctx, river.NewJobListParams().Kinds(kinds...).States(liveStates...).First(1))
	if err != nil {
		return false, fmt.Errorf("list live %v jobs: %w", kinds, err)
	}
	return len(res.Jobs) > 0, nil
}
