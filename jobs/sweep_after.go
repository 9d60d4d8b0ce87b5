package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// A sweep after the backfill. A source such as bsky.network's listReposByCollection still
// lists accounts deleted long before the stream began (indigo issue 1276), and pages put
// them in the index; the stream will never say a word about them. So, with
// Config.SweepAfterBackfill set (serve: the firehose's relay), a watcher is asked for
// wherever chains of pages begin or end: a start (its run, completed or cancelled, and its
// chains, completed or stopped), a retry, a reset's new chain, a chain that completes, and
// the workers' start (a backfill written before this existed, or with the setting off).
// Once no page, reset or run is live, it decides (sweepAfterDecision):
//   - a sweep of the relay is at work (its job live): wait for it to end, then decide again
//     (it may never walk the index: stopped, cancelled; and the watcher never starts a
//     second sweep of bsky.network beside it);
//   - no page has written to the index since the last finished sweep of the relay began to
//     walk the index's accounts: nothing to do;
//   - else start a sweep.
//
// "Began to walk" is saved only once no page job that began before it is still running
// (walkBegins, sweep.go): a page stamps pages_written_at when its transaction begins, before
// its index write lands, so a page stamped before the walk began is in it. A page whose write
// landed but whose transaction did not commit stamps it after the write
// (stampUncommittedWrite, page.go).

// SweepAfterBackfillKind is the River kind of the watcher.
const SweepAfterBackfillKind = "account_sweep_after_backfill"

// How long the watcher waits before it looks again: for live pages, and for the sweep at work
// (which takes hours against bsky.network).
const (
	sweepAfterPagesWait = 10 * time.Second
	sweepAfterSweepWait = time.Minute
)

// sweepAfterLockKey serialises the watcher's decision with the chains that complete meanwhile.
const sweepAfterLockKey = 0x636f6c69_73776570 // "colisweP"

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
		Queue:       QueueRuns,
		MaxAttempts: sweepMaxAttempts, // given up, it would leave pages unswept until next asked
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// SweepAfterBackfillWorker starts the sweep once the backfill is quiet.
type SweepAfterBackfillWorker struct {
	river.WorkerDefaults[SweepAfterBackfillArgs]
	b *Backfill
}

// sweepAfter is what the watcher decided.
type sweepAfter int

const (
	sweepNotNeeded sweepAfter = iota // no page since the last finished walk of the index
	sweepWait                        // a sweep of the relay is at work: decide after it
	sweepStart
	sweepPagesLive // pages, resets or runs are live: decide after them
)

func (w *SweepAfterBackfillWorker) Work(ctx context.Context, job *river.Job[SweepAfterBackfillArgs]) error {
	relay := job.Args.Relay
	var decided sweepAfter
	var started Sweep
	err := pgx.BeginFunc(ctx, w.b.Pool, func(tx pgx.Tx) error {
		if err := queries.SweepAfterBackfillLock(ctx, tx, sweepAfterLockKey); err != nil {
			return err
		}
		// Under the lock: a start that asked for a watcher while this one was running had its
		// request taken for this one, and its pages must be waited for too.
		res, err := w.b.River.JobListTx(ctx, tx, river.NewJobListParams().Kinds(PageKind, ResetKind, RunKind).States(liveStates...).First(1))
		if err != nil || len(res.Jobs) > 0 {
			decided = sweepPagesLive
			return err
		}
		sweeping, err := w.b.liveSweeps(ctx, tx)
		if err != nil {
			return err
		}
		if decided, err = sweepAfterDecision(ctx, tx, relay, sweeping); err != nil || decided == sweepWait {
			return err
		}
		if decided == sweepStart {
			if started, err = w.b.startSweepTx(ctx, tx, relay, nil, nil, SweepReasonBackfill); err != nil {
				return err
			}
		}
		// Completed here, under the lock: a request for a watcher that waited for the lock
		// then inserts one of its own instead of finding this one still running.
		done, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		if err == nil && done.State != rivertype.JobStateCompleted {
			err = fmt.Errorf("the watcher is %s, no longer running", done.State)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sweep after the backfill: %w", err)
	}
	switch decided {
	case sweepPagesLive:
		return river.JobSnooze(cmp.Or(w.b.sweepAfterBackfillWait, sweepAfterPagesWait))
	case sweepWait:
		w.b.logger.DebugContext(ctx, "sweep after the backfill: waiting for the sweep at work", "relay", relay)
		return river.JobSnooze(cmp.Or(w.b.sweepAfterBackfillWait, sweepAfterSweepWait))
	case sweepStart:
		w.b.logger.InfoContext(ctx, "account sweep started: the backfill wrote pages since the last sweep walked the index",
			"sweep", started.ID, "relay", relay)
	}
	return nil
}

// sweepAfterDecision decides for relay, given the sweeps whose job is live (one whose job
// stopped, was cancelled or gave up walks nothing). Relays are compared as their http(s)
// bases: an operator's sweep of https://bsky.network is one of wss://bsky.network.
func sweepAfterDecision(ctx context.Context, tx pgx.Tx, relay string, sweeping map[int64]bool) (sweepAfter, error) {
	same := func(other string) bool {
		a, errA := relayHTTPBase(relay)
		b, errB := relayHTTPBase(other)
		return errA == nil && errB == nil && a == b
	}
	unfinished, err := queries.SweepsUnfinished(ctx, tx)
	if err != nil {
		return 0, err
	}
	for _, s := range unfinished {
		if sweeping[s.ID] && same(s.Relay) {
			return sweepWait, nil
		}
	}
	pages, err := queries.PagesWrittenLast(ctx, tx)
	if err != nil || !pages.Written {
		return sweepNotNeeded, err
	}
	walked, err := queries.SweepsWalkedLast(ctx, tx)
	if err != nil {
		return 0, err
	}
	for _, s := range walked {
		if same(s.Relay) && !pages.At.After(s.Began) {
			return sweepNotNeeded, nil
		}
	}
	return sweepStart, nil
}

// liveSweeps is the set of sweeps whose job is live (a few at most: one per gap, the
// operators', this one), read in tx.
func (b *Backfill) liveSweeps(ctx context.Context, tx pgx.Tx) (map[int64]bool, error) {
	res, err := b.River.JobListTx(ctx, tx, river.NewJobListParams().Kinds(AccountSweepKind).States(liveStates...).First(10_000))
	if err != nil {
		return nil, fmt.Errorf("list live account sweeps: %w", err)
	}
	out := map[int64]bool{}
	for _, j := range res.Jobs {
		var args AccountSweepArgs
		if err := json.Unmarshal(j.EncodedArgs, &args); err == nil {
			out[args.SweepID] = true
		}
	}
	return out, nil
}

// askSweepAfterBackfill asks for the watcher of relay's sweep in tx ("" relay: nothing), under
// the lock its decision takes: a watcher that has decided is completed by then, and this
// request is a watcher of its own.
func askSweepAfterBackfill(ctx context.Context, client *river.Client[pgx.Tx], tx pgx.Tx, relay string) error {
	if relay == "" {
		return nil
	}
	if err := queries.SweepAfterBackfillLock(ctx, tx, sweepAfterLockKey); err != nil {
		return fmt.Errorf("ask for the sweep after the backfill: %w", err)
	}
	if _, err := client.InsertTx(ctx, tx, SweepAfterBackfillArgs{Relay: relay}, nil); err != nil {
		return fmt.Errorf("ask for the sweep after the backfill: %w", err)
	}
	return nil
}

// watchForSweepAfterBackfill asks for the watcher as the workers start: a backfill written
// before this existed, or while the setting was off, gets its sweep too.
func (b *Backfill) watchForSweepAfterBackfill(ctx context.Context) error {
	return pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		return askSweepAfterBackfill(ctx, b.River, tx, b.sweepAfterBackfill)
	})
}
