package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/internal/pgstore"
)

// A gap in the stream: events after a cursor that were never applied, because the relay no
// longer had them (#info OutdatedCursor), its sequence was reset (FutureCursor), or an
// operator moved the cursor past them. The gap is recorded in Postgres (firehose_gaps) before
// the follower goes past it (or in the move's transaction), so neither a restart nor another
// process can lose the knowledge that the index may be short.
//
// What a gap can cost, and what makes it good again:
//   - adds (an account's first record in a collection): a refresh pages every collection
//     again from the beginning, from sources that saw those events, and puts the pairs back;
//     pages never undo what the stream removed (tombstones, deleted accounts), so the refresh
//     adds nothing the index had taken out.
//   - removals and status changes (last records deleted, accounts deleted, hidden or back):
//     no source such as bsky.network's tells them. The gap's account sweep (sweep.go) brings
//     every account's status in line with the relay's, and re-learns from its PDS every
//     account whose repo changed since an hour before the stream was last live.
//
// The gap is repaired once every collection is complete again after the refresh and its sweep
// has finished (GapsMarkRepaired). With a repair source set (serve's COLINDEX_GAP_REPAIR, on
// by default), each new gap enqueues a repair job that starts the refresh as soon as no
// backfill run is live, and its sweep, which starts at once.

// GapRepairKind is the River kind of the job that repairs a gap.
const GapRepairKind = "firehose_gap_repair"

// gapRepairWait is how long a repair waits for a live run before it asks again;
// gapDiscoveryWait how long it waits after discovery could not see every collection (each
// try fetches the lexicon list and the source's collection list again).
const (
	gapRepairWait    = 30 * time.Second
	gapDiscoveryWait = 5 * time.Minute
)

// What opened a gap (firehose_gaps.kind).
const (
	GapOutdatedCursor = firehose.GapOutdatedCursor // the relay's #info OutdatedCursor
	GapFutureCursor   = firehose.GapFutureCursor   // the relay's FutureCursor: its sequence was reset
	GapCursorMove     = "cursor_move"              // an operator's move that skips events
)

// recentGaps is how many of the latest gaps the status lists beside every open one.
const recentGaps = 5

// gapsLockKey serialises the transactions that may close gaps (see closeGaps).
const gapsLockKey = 0x636f6c6761707300 // "colgaps\0"

// RepairGapArgs starts a refresh run for one gap (and every other open gap) once no run is
// live. Unique per gap: a second report of the same gap is the same job.
type RepairGapArgs struct {
	GapID int64 `json:"gap_id" river:"unique"`
}

func (RepairGapArgs) Kind() string { return GapRepairKind }

func (RepairGapArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:      QueueRuns,
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// Gap is one gap in the stream, as GET /admin/firehose lists it.
type Gap struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind" enum:"outdated_cursor,future_cursor,cursor_move" doc:"What opened it: the relay's #info OutdatedCursor, the relay's FutureCursor (its sequence was reset), or an operator's cursor move that skips events."`
	Relay       string     `json:"relay" doc:"The relay whose stream had the gap."`
	AfterSeq    int64      `json:"after_seq" doc:"The durable cursor the follower asked to resume after: the events after it, up to the oldest the relay still had, were never applied."`
	Message     string     `json:"message,omitempty" doc:"What reported it: the relay's frame and message, or the operator's move."`
	DetectedAt  time.Time  `json:"detected_at"`
	RepairRunID *int64     `json:"repair_run_id,omitempty" doc:"The refresh run (every collection paged again from the beginning) that repairs the gap's missed adds, once it has started."`
	RepairedAt  *time.Time `json:"repaired_at,omitempty" doc:"When every collection was complete again after that refresh, and the gap's account sweep had finished (its checks run or given up): adds, removals and status changes missed in the gap are back, but for repos changed only before the sweep's rev floor (README, Gaps in the stream)."`
	LiveUntil   *time.Time `json:"live_until,omitempty" doc:"When the stream last stood at after_seq (the follower's last save of it): the repos the gap changed have revs after about this time, less the sweep's margin of an hour."`
}

func gapOf(r pgstore.FirehoseGap) Gap {
	return Gap{ID: r.ID, Kind: r.Kind, Relay: r.Relay, AfterSeq: r.AfterSeq, Message: r.Message, DetectedAt: r.DetectedAt,
		RepairRunID: r.RepairRunID, RepairedAt: r.RepairedAt, LiveUntil: r.LiveUntil}
}

// RecordGap records that relay's stream skipped the events after afterSeq, and enqueues its
// repair when a repair source is set, in one transaction. The same gap reported again while
// its refresh has not started (the follower asked from the same cursor after a restart) is
// the same gap; once a refresh has started, a report is a gap of its own, since the relay may
// have dropped more events since (except a FutureCursor's: what it lost was gone before its
// first report). The follower goes past the gap only after this returns nil.
func (b *Backfill) RecordGap(ctx context.Context, relay string, afterSeq int64, kind, message string) (Gap, error) {
	record := func() (Gap, func(), error) {
		tx, err := b.Pool.Begin(ctx)
		if err != nil {
			return Gap{}, nil, err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
		gap, recorded, err := b.RecordGapTx(ctx, tx, relay, afterSeq, kind, message, nil)
		if err != nil {
			return Gap{}, nil, err
		}
		return gap, recorded, tx.Commit(ctx)
	}
	gap, recorded, err := record()
	if errors.Is(err, pgx.ErrNoRows) {
		// A concurrent report of the same gap committed between our insert and our read of
		// it (the statement's snapshot predates it): it is there now.
		gap, recorded, err = record()
	}
	if err != nil {
		return Gap{}, fmt.Errorf("record stream gap: %w", err)
	}
	recorded()
	return gap, nil
}

// RecordGapTx is RecordGap inside tx (an operator's cursor move records the gap it opens in
// the move's own transaction); call recorded once tx has committed. liveUntil is when the
// stream last stood at afterSeq (nil: the follower's last save of its cursor says).
func (b *Backfill) RecordGapTx(ctx context.Context, tx pgx.Tx, relay string, afterSeq int64, kind, message string, liveUntil *time.Time) (gap Gap, recorded func(), err error) {
	row, err := queries.GapInsert(ctx, tx, pgstore.GapInsertParams{Relay: relay, AfterSeq: afterSeq, Kind: kind, Message: message, LiveUntil: liveUntil})
	if err != nil {
		return Gap{}, nil, err
	}
	r, err := queries.GapGet(ctx, tx, row.ID)
	if err != nil {
		return Gap{}, nil, err
	}
	if b.gapRepairSource != nil {
		// Unique per gap while live: a gap first recorded with repair off, or whose repair
		// job was discarded, gets one when it is reported again.
		if _, err := b.River.InsertTx(ctx, tx, RepairGapArgs{GapID: row.ID}, nil); err != nil {
			return Gap{}, nil, fmt.Errorf("enqueue the gap's repair: %w", err)
		}
		// The sweep re-learns what the refresh cannot: statuses, and the record deletes of
		// the repos that changed since the stream was last live (sweep.go).
		if _, err := b.startSweepTx(ctx, tx, relay, &r.ID, revFloor(r.LiveUntil), SweepReasonGap); err != nil {
			return Gap{}, nil, fmt.Errorf("the gap's account sweep: %w", err)
		}
	}
	recorded = func() {
		if row.Inserted {
			b.Metrics.FirehoseGaps.Inc()
			b.logger.WarnContext(ctx, "stream gap recorded: the index may miss adds, removals and status changes of the skipped events",
				"relay", relay, "after_seq", afterSeq, "kind", kind, "gap", row.ID, "repair", b.gapRepairSource != nil, "message", message)
		}
	}
	return gapOf(r), recorded, nil
}

// RecordMoveGapTx records, in the transaction of an operator's cursor move from m.Previous
// (nil: none was saved; -1: the live tail) to seq, the gap the move opens, if it opens one: a move
// forward or to the live tail skips the events after previous, and so does any move from a
// cursor the relay answered with FutureCursor (the stream after it is the relay's new
// sequence, whatever seq says). A move back replays, and opens none. Call recorded once tx has
// committed; gap is nil when the move opens none.
func (b *Backfill) RecordMoveGapTx(ctx context.Context, tx pgx.Tx, relay string, m firehose.Moved, seq int64) (gap *Gap, recorded func(), err error) {
	if m.Previous == nil || *m.Previous < 0 {
		return nil, func() {}, nil
	}
	prev := *m.Previous
	skips := seq < 0 || seq > prev
	if !skips {
		if skips, err = queries.GapFutureCursorAfter(ctx, tx, pgstore.GapFutureCursorAfterParams{Relay: relay, AfterSeq: prev}); err != nil {
			return nil, nil, fmt.Errorf("look for a FutureCursor gap: %w", err)
		}
	}
	if !skips {
		return nil, func() {}, nil
	}
	to := "the live tail"
	if seq >= 0 {
		to = fmt.Sprintf("seq %d", seq)
	}
	var liveUntil *time.Time
	if !m.PreviousLiveAt.IsZero() {
		liveUntil = &m.PreviousLiveAt
	}
	g, recorded, err := b.RecordGapTx(ctx, tx, relay, prev, GapCursorMove, "an operator moved the cursor to "+to, liveUntil)
	if err != nil {
		return nil, nil, err
	}
	return &g, recorded, nil
}

// Gaps lists every open gap and the latest few, newest first.
func (b *Backfill) Gaps(ctx context.Context) ([]Gap, error) {
	rows, err := queries.GapsRecent(ctx, b.Pool, recentGaps)
	if err != nil {
		return nil, fmt.Errorf("list stream gaps: %w", err)
	}
	out := make([]Gap, len(rows))
	for i, r := range rows {
		out[i] = gapOf(r)
	}
	return out, nil
}

// OpenGaps counts the gaps not yet repaired.
func (b *Backfill) OpenGaps(ctx context.Context) (int64, error) {
	n, err := queries.GapsOpenCount(ctx, b.Pool)
	if err != nil {
		return 0, fmt.Errorf("count open stream gaps: %w", err)
	}
	return n, nil
}

// closeGaps marks repaired, inside tx, every gap whose refresh has happened once every
// collection is complete. The lock makes two transactions that complete the last two
// collections take turns: the second sees the first's completion (each statement of a
// read-committed transaction sees what committed before it), so one of them closes the gaps.
func closeGaps(ctx context.Context, tx pgx.Tx) error {
	if err := queries.GapsLock(ctx, tx, gapsLockKey); err != nil {
		return fmt.Errorf("lock stream gaps: %w", err)
	}
	if _, err := queries.GapsMarkRepaired(ctx, tx); err != nil {
		return fmt.Errorf("close stream gaps: %w", err)
	}
	return nil
}

// ErrDiscoveryIncomplete refuses a refresh whose discovery may have missed collections (the
// source's collection list, or the index scan, failed): a collection first seen in a gap
// would get no progress row, and the gap would close without it.
var ErrDiscoveryIncomplete = errors.New("discovery could not see every collection")

// completeForRefresh says whether discovery saw every collection a refresh must page.
func (d Discovery) completeForRefresh() error {
	switch {
	case d.SourceListError != "":
		return fmt.Errorf("%w: the source's collection list: %s", ErrDiscoveryIncomplete, d.SourceListError)
	case d.IndexScanError != "":
		return fmt.Errorf("%w: the index scan: %s", ErrDiscoveryIncomplete, d.IndexScanError)
	case d.LexiconListError != "" && d.FromSource == 0:
		return fmt.Errorf("%w: the lexicon list (and the source serves no collection list): %s", ErrDiscoveryIncomplete, d.LexiconListError)
	case d.LexiconListDropped > 0 && d.FromSource == 0:
		return fmt.Errorf("%w: the lexicon list named %d collections past the cap (and the source serves no collection list)", ErrDiscoveryIncomplete, d.LexiconListDropped)
	}
	return nil
}

// RepairGapWorker starts the refresh that repairs a gap once no run is live (a live run's
// pages may predate the gap), then watches it until no job pages: the gap is closed then if
// every collection is complete (a page that completes the last one closes it first, as a
// rule). Chains that stopped (a source's errors ran out their retries) leave it open, shown
// with its refresh run, for an operator's retry: the job does not fight an operator, and it
// starts no refresh after an operator cancelled the run that was live when the gap was found.
type RepairGapWorker struct {
	river.WorkerDefaults[RepairGapArgs]
	b *Backfill
}

func (w *RepairGapWorker) Work(ctx context.Context, job *river.Job[RepairGapArgs]) error {
	gap, err := queries.GapGet(ctx, w.b.Pool, job.Args.GapID)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("stream gap %d is not recorded (reopen-all forgets gaps)", job.Args.GapID))
	}
	if err != nil {
		return fmt.Errorf("read stream gap %d: %w", job.Args.GapID, err)
	}
	if gap.RepairedAt != nil {
		return nil
	}
	if err := w.sweepOf(ctx, gap); err != nil {
		return err
	}
	wait := river.JobSnooze(cmp.Or(w.b.gapRepairWait, gapRepairWait))
	if gap.RepairRunID != nil {
		return w.watch(ctx, gap, wait)
	}
	src := w.b.gapRepairSource
	if src == nil {
		return river.JobCancel(fmt.Errorf("stream gap %d: automatic repair is off; start a refresh run (colindex start --refresh)", gap.ID))
	}
	if run, err := queries.RunGetLatest(ctx, w.b.Pool); err == nil && run.CancelledAt != nil && run.CancelledAt.After(gap.DetectedAt) {
		w.b.logger.WarnContext(ctx, "stream gap: an operator cancelled the backfill since it was found; no refresh is started (colindex start --refresh repairs it)",
			"gap", gap.ID, "cancelled_run", run.ID)
		return nil
	} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read the latest run: %w", err)
	}
	if w.b.gapRepairReady != nil {
		if err := w.b.gapRepairReady(ctx); err != nil {
			w.b.logger.InfoContext(ctx, "stream gap: refresh put off", "gap", gap.ID, "reason", err)
			return wait
		}
	}
	res, err := w.b.StartWith(ctx, *src, StartOptions{Refresh: true})
	switch {
	case errors.Is(err, ErrRunning) || errors.Is(err, ErrCancelPending):
		return wait
	case errors.Is(err, ErrDiscoveryIncomplete):
		w.b.logger.WarnContext(ctx, "stream gap: refresh put off", "gap", gap.ID, "error", err)
		return river.JobSnooze(cmp.Or(w.b.gapRepairWait, gapDiscoveryWait))
	case err != nil:
		return fmt.Errorf("stream gap %d: start the refresh: %w", gap.ID, err)
	}
	w.b.logger.InfoContext(ctx, "stream gap: refresh run started", "gap", gap.ID, "run_id", res.RunID,
		"collections", res.Collections)
	return wait
}

// sweepOf gives an open gap recorded before sweeps existed the sweep it lacks (statuses only:
// such a gap does not know when the stream was last live).
func (w *RepairGapWorker) sweepOf(ctx context.Context, gap pgstore.FirehoseGap) error {
	_, err := queries.SweepOfGap(ctx, w.b.Pool, &gap.ID)
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return pgx.BeginFunc(ctx, w.b.Pool, func(tx pgx.Tx) error {
		_, err := w.b.startSweepTx(ctx, tx, gap.Relay, &gap.ID, revFloor(gap.LiveUntil), SweepReasonGap)
		return err
	})
}

// revFloor is a gap's sweep's rev floor: an hour before the stream was last live, or none
// when that is not known.
func revFloor(liveUntil *time.Time) *time.Time {
	if liveUntil == nil {
		return nil
	}
	t := liveUntil.Add(-sweepRevMargin)
	return &t
}

// watch follows a gap whose refresh has started until no job pages, and closes it then if
// every collection is complete and its sweep has finished (else the sweep closes it when it
// finishes).
func (w *RepairGapWorker) watch(ctx context.Context, gap pgstore.FirehoseGap, wait error) error {
	if live, err := anyLive(ctx, w.b.River, RunKind, PageKind, ResetKind); err != nil || live {
		return cmp.Or(err, wait)
	}
	if err := pgx.BeginFunc(ctx, w.b.Pool, func(tx pgx.Tx) error { return closeGaps(ctx, tx) }); err != nil {
		return err
	}
	if g, err := queries.GapGet(ctx, w.b.Pool, gap.ID); err == nil && g.RepairedAt == nil {
		if sw, err := queries.SweepOfGap(ctx, w.b.Pool, &gap.ID); err == nil && sw.FinishedAt == nil {
			return nil // its sweep closes it when it finishes
		}
		w.b.logger.WarnContext(ctx, "stream gap: its refresh stopped with collections incomplete; it closes once they complete (colindex retry)",
			"gap", gap.ID, "run_id", *gap.RepairRunID)
	}
	return nil
}
