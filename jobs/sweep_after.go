package jobs

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// A sweep after the backfill. A source such as bsky.network's listReposByCollection still
// lists accounts deleted long before the stream began (indigo issue 1276), and pages put
// them in the index; the stream will never say a word about them. So when a chain of pages
// completes, with Config.SweepAfterBackfill set (serve: the firehose's relay), it enqueues a
// watcher; once no page, reset or run is live, the watcher starts a sweep of the relay,
// unless one under way will walk the index's accounts after those pages anyway
// (SweepAfterBackfillNeeded). Pages written after a sweep began that walk call for another;
// a start that pages nothing calls for none.

// SweepAfterBackfillKind is the River kind of the watcher.
const SweepAfterBackfillKind = "account_sweep_after_backfill"

// sweepAfterBackfillWait is how long the watcher waits for live pages before it looks again.
const sweepAfterBackfillWait = 2 * time.Second

// Reasons a sweep began (account_sweeps.reason).
const (
	SweepReasonOperator = "operator"
	SweepReasonGap      = "gap"
	SweepReasonBackfill = "backfill"
)

// SweepAfterBackfillArgs watches the backfill of the relay's index. Unique while live: the
// chains that complete meanwhile share one watcher.
type SweepAfterBackfillArgs struct {
	Relay string `json:"relay" river:"unique"`
}

func (SweepAfterBackfillArgs) Kind() string { return SweepAfterBackfillKind }

func (SweepAfterBackfillArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:      QueueRuns,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// SweepAfterBackfillWorker starts the sweep once the backfill is quiet.
type SweepAfterBackfillWorker struct {
	river.WorkerDefaults[SweepAfterBackfillArgs]
	b *Backfill
}

func (w *SweepAfterBackfillWorker) Work(ctx context.Context, job *river.Job[SweepAfterBackfillArgs]) error {
	live, err := anyLive(ctx, w.b.River, PageKind, ResetKind, RunKind)
	if err != nil {
		return err
	}
	if live {
		return river.JobSnooze(cmp.Or(w.b.sweepAfterBackfillWait, sweepAfterBackfillWait))
	}
	relay := job.Args.Relay
	var started *Sweep
	err = pgx.BeginFunc(ctx, w.b.Pool, func(tx pgx.Tx) error {
		needed, err := queries.SweepAfterBackfillNeeded(ctx, tx, relay)
		if err != nil || !needed {
			return err
		}
		sw, err := w.b.startSweepTx(ctx, tx, relay, nil, nil, SweepReasonBackfill)
		started = &sw
		return err
	})
	if err != nil {
		return fmt.Errorf("sweep after the backfill: %w", err)
	}
	if started != nil {
		w.b.logger.InfoContext(ctx, "account sweep started: the backfill wrote pages since the last sweep walked the index",
			"sweep", started.ID, "relay", relay)
	}
	return nil
}

// sweepAfterChain is the page worker's hook for a chain that completes: it enqueues the
// watcher in the page's transaction (nil when no relay is set).
func sweepAfterChain(relay string) func(ctx context.Context, tx pgx.Tx) error {
	if relay == "" {
		return nil
	}
	return func(ctx context.Context, tx pgx.Tx) error {
		client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return err
		}
		if _, err := client.InsertTx(ctx, tx, SweepAfterBackfillArgs{Relay: relay}, nil); err != nil {
			return fmt.Errorf("enqueue the sweep after the backfill: %w", err)
		}
		return nil
	}
}
