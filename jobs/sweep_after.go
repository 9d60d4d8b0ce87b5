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
)

// A sweep after the backfill. A source such as bsky.network's listReposByCollection still
// lists accounts deleted long before the stream began (indigo issue 1276), and pages put
// them in the index; the stream will never say a word about them. So, with
// Config.SweepAfterBackfill set (serve: the firehose's relay), a watcher is enqueued when a
// chain of pages completes, when a run ends (a cancelled run, a chain that stopped) and when
// the workers start (a backfill from before this existed). Once no page, reset or run is
// live, it decides (sweepAfterDecision):
//   - no page has written to the index since the last finished sweep of the relay began to
//     walk the index's accounts: nothing to do;
//   - a sweep of the relay is under way (its job live) that has yet to begin that walk: it
//     will see the pages' accounts, nothing to do;
//   - one is under way that has begun it: wait for it to finish, then decide (never two
//     sweeps of bsky.network at once);
//   - else start a sweep.
//
// "Began to walk" is saved only once no page job that began before it is still running
// (walkBegins, sweep.go): a page stamps pages_written_at when its transaction begins, before
// its index write lands, so a page stamped before the walk began is in it.

// SweepAfterBackfillKind is the River kind of the watcher.
const SweepAfterBackfillKind = "account_sweep_after_backfill"

// sweepAfterBackfillWait is how long the watcher waits for live pages, or for the sweep under
// way, before it looks again.
const sweepAfterBackfillWait = 2 * time.Second

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
		Queue:      QueueRuns,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates},
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
	sweepNotNeeded sweepAfter = iota // no page since the last walk, or one under way will see them
	sweepWait                        // a sweep of the relay is walking the index: decide after it
	sweepStart
)

func (w *SweepAfterBackfillWorker) Work(ctx context.Context, job *river.Job[SweepAfterBackfillArgs]) error {
	wait := river.JobSnooze(cmp.Or(w.b.sweepAfterBackfillWait, sweepAfterBackfillWait))
	live, err := anyLive(ctx, w.b.River, PageKind, ResetKind, RunKind)
	if err != nil || live {
		return cmp.Or(err, wait)
	}
	sweeping, err := w.b.liveSweeps(ctx)
	if err != nil {
		return err
	}
	relay := job.Args.Relay
	var decided sweepAfter
	var started Sweep
	err = pgx.BeginFunc(ctx, w.b.Pool, func(tx pgx.Tx) error {
		if err := queries.SweepAfterBackfillLock(ctx, tx, sweepAfterLockKey); err != nil {
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
		// Completed here, under the lock: a chain that completes after this commits enqueues
		// a watcher of its own instead of finding this one still running.
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
	if err != nil {
		return fmt.Errorf("sweep after the backfill: %w", err)
	}
	switch decided {
	case sweepWait:
		return wait
	case sweepStart:
		w.b.logger.InfoContext(ctx, "account sweep started: the backfill wrote pages since the last sweep walked the index",
			"sweep", started.ID, "relay", relay)
	}
	return nil
}

// sweepAfterDecision decides for relay, given the sweeps whose job is live (a sweep whose job
// stopped, was cancelled or gave up walks nothing). Relays are compared as their http(s)
// bases: an operator's sweep of https://bsky.network is one of wss://bsky.network.
func sweepAfterDecision(ctx context.Context, tx pgx.Tx, relay string, sweeping map[int64]bool) (sweepAfter, error) {
	same := func(other string) bool {
		a, errA := relayHTTPBase(relay)
		b, errB := relayHTTPBase(other)
		return errA == nil && errB == nil && a == b
	}
	unfinished, err := queries.SweepsUnfinishedState(ctx, tx)
	if err != nil {
		return 0, err
	}
	walking := false
	for _, s := range unfinished {
		if !sweeping[s.ID] || !same(s.Relay) {
			continue
		}
		if s.UnlistedBeganAt == nil {
			return sweepNotNeeded, nil
		}
		walking = true
	}
	if walking {
		return sweepWait, nil
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
// operators', this one).
func (b *Backfill) liveSweeps(ctx context.Context) (map[int64]bool, error) {
	res, err := b.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind).States(liveStates...).First(10_000))
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

// sweepAfterChain is the hook that enqueues the watcher in a transaction (a chain's last
// page, a run's end); nil when no relay is set.
func sweepAfterChain(relay string) func(ctx context.Context, tx pgx.Tx) error {
	if relay == "" {
		return nil
	}
	return func(ctx context.Context, tx pgx.Tx) error {
		client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return err
		}
		if err := queries.SweepAfterBackfillLock(ctx, tx, sweepAfterLockKey); err != nil {
			return err
		}
		if _, err := client.InsertTx(ctx, tx, SweepAfterBackfillArgs{Relay: relay}, nil); err != nil {
			return fmt.Errorf("enqueue the sweep after the backfill: %w", err)
		}
		return nil
	}
}

// watchForSweepAfterBackfill enqueues the watcher as the workers start: a backfill written
// before this existed, or while the setting was off, gets its sweep too.
func (b *Backfill) watchForSweepAfterBackfill(ctx context.Context) error {
	if b.sweepAfterBackfill == "" {
		return nil
	}
	if _, err := b.River.Insert(ctx, SweepAfterBackfillArgs{Relay: b.sweepAfterBackfill}, nil); err != nil {
		return fmt.Errorf("enqueue the sweep after the backfill: %w", err)
	}
	return nil
}
