package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

const (
	// DefaultPageMaxAttempts with pageRetryCap rides out a source outage of about half an
	// hour before the chain stops with its last error (a re-POST or a retry resumes it).
	DefaultPageMaxAttempts = 12
	pageRetryCap           = 5 * time.Minute
)

// errChainCancelled ends a page whose chain was cancelled while it was in flight: an
// operator's decision, not a failure of the collection, so it is not recorded as its error.
var errChainCancelled = errors.New("chain cancelled")

// ErrCursorRepeated is returned when a page comes back with the cursor it was asked for, or
// with one the chain has already followed: following it would loop forever.
var ErrCursorRepeated = errors.New("source returned a cursor it had already returned")

var queries = pgstore.New()

// PageWorker fetches and commits one page of one collection.
type PageWorker struct {
	river.WorkerDefaults[PageArgs]

	Pool   *pgxpool.Pool
	Index  *rocksindex.Index
	Source *source.Client
	Logger *slog.Logger
	// Limit is the page size asked of the source.
	Limit int
	// Pause is the least time between two pages of one collection.
	Pause time.Duration
	// MaxAttempts is the retry budget of each page job.
	MaxAttempts int
	// BeforeFetch, when set, runs before the fetch (Config.BeforeFetch).
	BeforeFetch func(ctx context.Context) error

	// metrics is what pages record into (Config.Metrics).
	metrics *metrics.Metrics
	// timeout is PageJobTimeout(Pause).
	timeout time.Duration
	// gate orders the pages' index writes, deepest chain first (nil: no order).
	gate *indexGate
	// sweepRelay is Config.SweepAfterBackfill: a chain's last page asks for the watcher of the
	// sweep after the backfill (sweep_after.go).
	sweepRelay string

	// beforeIndexWrite, when set (tests only), runs as the page's index write gets its turn.
	beforeIndexWrite func(collection string)
	// beforeCommit, when set (tests only), runs just before the page's transaction commits;
	// an error from it rolls the page back as a crash at that point would.
	beforeCommit func(ctx context.Context, collection string) error
}

func (w *PageWorker) Timeout(*river.Job[PageArgs]) time.Duration {
	return cmp.Or(w.timeout, PageJobTimeout(w.Pause))
}

// NextRetry backs off exponentially with full jitter: 1 s, 2 s, 4 s, … capped at pageRetryCap.
func (w *PageWorker) NextRetry(job *river.Job[PageArgs]) time.Time {
	backoff := min(time.Second<<min(job.Attempt, 20), pageRetryCap)
	return time.Now().Add(backoff/2 + rand.N(backoff/2+1))
}

func (w *PageWorker) Work(ctx context.Context, job *river.Job[PageArgs]) error {
	start := time.Now()
	coll := job.Args.Collection
	row, err := queries.ProgressGet(ctx, w.Pool, coll)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("no progress row for %s", coll))
	}
	if err != nil {
		return fmt.Errorf("load progress of %s: %w", coll, err)
	}
	if row.CompletedAt != nil {
		return nil
	}
	src, err := source.Parse(row.Source)
	if err != nil {
		return w.fail(ctx, coll, river.JobCancel(fmt.Errorf("progress row of %s: %w", coll, err)))
	}

	paused := max(w.Pause-time.Since(job.Args.PrevPageAt), 0)
	if paused > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(paused):
		}
	}

	if w.BeforeFetch != nil {
		err := w.BeforeFetch(ctx)
		if errors.Is(err, ErrYield) {
			// Not a failure: the page comes back shortly, no attempt spent, its place kept.
			return w.snooze(ctx, job, yieldSnooze)
		}
		if err != nil {
			return err
		}
	}
	// Under the rate cap, chains deeper into their collection go first: the longest chain,
	// which can only run one page after another, never waits behind short collections.
	page, err := w.Source.Fetch(ctx, src, source.PageRequest{
		Collection: coll, Cursor: row.Cursor, Limit: w.Limit, Priority: row.PagesFetched,
	})
	var limited *source.RateLimitedError
	if errors.As(err, &limited) {
		// The source asked for a pause: not a failure, and no attempt is spent.
		return w.snooze(ctx, job, limited.Wait)
	}
	if err != nil {
		return w.fail(ctx, coll, fmt.Errorf("fetch page of %s from %s: %w", coll, src.Name, err))
	}
	fetchedAt := time.Now()
	prior := job.Args.SeenCursors
	if row.Cursor == "" {
		prior = nil // paging from the start (a reset, reopen-all): an old chain's cursors do not count
	}
	seen := nextSeenCursors(prior, row.Cursor)
	if page.Cursor != "" && slices.Contains(seen, cursorFingerprint(page.Cursor)) {
		return w.fail(ctx, coll, river.JobCancel(fmt.Errorf("%s from %s: %w", coll, src.Name, ErrCursorRepeated)))
	}

	valid, skipped := ValidDIDs(page.DIDs)
	// The DIDs are written while the commit's statements run; the commit waits for them, so
	// they are durable in the index before the cursor can move past them.
	ix := w.startIndexWrite(ctx, coll, valid, row.PagesFetched)
	committed, err := w.commit(ctx, job, row, page, len(valid), skipped, fetchedAt, seen, ix)
	// Work never returns while its write runs: a reset waits for the chain's running page
	// jobs to end, and after that nothing may write the collection. A page another worker
	// had already committed still reports its failed write.
	ixErr := ix.wait()
	if ixErr == nil && len(valid) > 0 && !committed {
		w.stampUncommittedWrite(ctx, coll)
	}
	if err == nil {
		err = ixErr
	}
	if errors.Is(err, errSourceMoved) {
		// Not a failure: the same job pages again, from the row as the move left it.
		w.Logger.InfoContext(ctx, "collection moved to another source during its page; paging again from there",
			"collection", coll, "fetched_from", src.Name)
		return w.snooze(ctx, job, 0)
	}
	if err != nil {
		return w.fail(ctx, coll, err)
	}
	if !committed {
		return nil
	}
	took := time.Since(start)
	w.metrics.PagesCommitted.Inc()
	w.metrics.DIDsImported.Add(float64(len(valid)))
	w.metrics.DIDsSkipped.Add(float64(skipped))
	w.metrics.PageSeconds.Observe(took.Seconds())
	w.metrics.PageOverheadSeconds.Observe((took - paused - page.Waited).Seconds())
	return nil
}

// commit advances the progress row, completes this job and inserts the next, atomically. It
// reports false when another worker had already committed this page (nothing is changed).
func (w *PageWorker) commit(ctx context.Context, job *river.Job[PageArgs], row pgstore.BackfillProgress,
	page source.Page, imported, skipped int, fetchedAt time.Time, seen []string, ix *indexWrite,
) (bool, error) {
	coll := job.Args.Collection
	done := page.Cursor == ""
	nextCursor := page.Cursor
	if done {
		// Keep the last cursor: DIDs first seen later are appended after it at the source.
		nextCursor = row.Cursor
	}

	// The transaction begins once the DIDs are being written: a page waiting for its turn at
	// the gate holds no connection (the pool has few; River needs them too).
	if err := ix.started(); err != nil {
		return false, err
	}
	tx, err := w.Pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("commit page of %s: %w", coll, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	moved, err := queries.ProgressAdvance(ctx, tx, pgstore.ProgressAdvanceParams{
		Collection: coll,
		PageCursor: row.Cursor,
		NextCursor: nextCursor,
		Imported:   int64(imported),
		Skipped:    int64(skipped),
		Completed:  done,

		SourceGeneration: row.SourceGeneration,
	})
	if err != nil {
		return false, fmt.Errorf("advance %s: %w", coll, err)
	}
	if moved == 0 {
		if now, err := queries.ProgressGet(ctx, tx, coll); err == nil && now.SourceGeneration != row.SourceGeneration {
			return false, errSourceMoved
		}
		// Someone else committed this page first; counting it again would double count.
		w.Logger.WarnContext(ctx, "page already committed; dropping duplicate", "collection", coll)
		return false, nil
	}
	// A plain error: the retry may land on the process that holds the bound index.
	if err := checkIndexBound(ctx, tx, w.Index); err != nil {
		return false, err
	}
	completed, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
	if err != nil {
		return false, fmt.Errorf("complete page job of %s: %w", coll, err)
	}
	// JobCompleteTx leaves a job that is no longer running (rescued, or already finalised)
	// as it is, without an error; and a cancel may have been asked for while this page was
	// in flight. Either way this worker no longer owns the chain: roll back.
	if completed.State != rivertype.JobStateCompleted {
		return false, fmt.Errorf("page job of %s is %s, no longer running: page dropped", coll, completed.State)
	}
	if cancelRequested(completed.Metadata) {
		return false, river.JobCancel(fmt.Errorf("backfill of %s: %w", coll, errChainCancelled))
	}
	if !done {
		client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return false, err
		}
		// Inserted after completing this job: before, the unique check would see this very
		// job still running and silently skip the insert, ending the chain.
		next := PageArgs{Collection: coll, Source: row.Source, PrevPageAt: fetchedAt, SeenCursors: seen}
		res, err := client.InsertTx(ctx, tx, next, &river.InsertOpts{Priority: priorityNextPage, MaxAttempts: w.MaxAttempts})
		if err != nil {
			return false, fmt.Errorf("enqueue next page of %s: %w", coll, err)
		}
		if res.UniqueSkippedAsDuplicate {
			return false, fmt.Errorf("enqueue next page of %s: another chain is live (job %d)", coll, res.Job.ID)
		}
	}
	// The DIDs are durable in the index before the cursor moves past them.
	if err := ix.wait(); err != nil {
		return false, err
	}
	if done {
		// The last collection to complete after a refresh closes the stream gaps it repairs.
		if err := closeGaps(ctx, tx); err != nil {
			return false, err
		}
		if w.sweepRelay != "" {
			client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
			if err != nil {
				return false, err
			}
			if err := askSweepAfterBackfill(ctx, client, tx, w.sweepRelay); err != nil {
				return false, err
			}
		}
	}
	if w.beforeCommit != nil {
		if err := w.beforeCommit(ctx, coll); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit page of %s: %w", coll, err)
	}
	return true, nil
}

// stampUncommittedWrite marks that a page's DIDs reached the index though its transaction,
// which stamps pages_written_at, did not commit: without it, a run cancelled during its only
// page left DIDs no sweep after the backfill was asked to check. It asks for the watcher as
// well, in case the one that would have seen the stamp already decided (this job rescued
// meanwhile). Nothing is stamped when the database is bound to another index, which is not
// the one the DIDs went to. A crash between the write and this stamp leaves the job to be
// retried, which writes and stamps again, unless the run was cancelled meanwhile or that was
// its last attempt.
func (w *PageWorker) stampUncommittedWrite(ctx context.Context, coll string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		if err := checkIndexBound(ctx, tx, w.Index); err != nil {
			return err
		}
		if err := queries.ProgressStampWritten(ctx, tx, coll); err != nil {
			return err
		}
		if w.sweepRelay == "" {
			return nil
		}
		client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return err
		}
		return askSweepAfterBackfill(ctx, client, tx, w.sweepRelay)
	})
	if err != nil {
		w.Logger.ErrorContext(ctx, "stamp a page's uncommitted index write", "collection", coll, "error", err)
	}
}

// fail records err as the collection's last error and returns it. A shutdown or a cancel is
// not a failure of the collection, so a cancelled context or chain records nothing; a job that
// ran out of time is one, and is recorded.
func (w *PageWorker) fail(ctx context.Context, coll string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, errChainCancelled) {
		return err
	}
	// The job's own context may be past its deadline: record with a fresh one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	w.metrics.PagesFailed.Inc()
	msg := err.Error()
	if len(msg) > 1000 {
		msg = msg[:1000] + "…"
	}
	if dbErr := queries.ProgressSetError(ctx, w.Pool, pgstore.ProgressSetErrorParams{Collection: coll, LastError: msg}); dbErr != nil {
		w.Logger.ErrorContext(ctx, "record page error", "collection", coll, "error", dbErr)
	}
	w.Logger.WarnContext(ctx, "page failed", "collection", coll, "error", msg)
	return err
}

// nextSeenCursors adds the cursor a page was fetched from to the chain's fingerprints,
// keeping the newest maxSeenCursors.
func nextSeenCursors(seen []string, cursor string) []string {
	if cursor == "" {
		return seen
	}
	out := append(slices.Clone(seen), cursorFingerprint(cursor))
	if len(out) > maxSeenCursors {
		out = out[len(out)-maxSeenCursors:]
	}
	return out
}

// ValidDIDs keeps the entries that are syntactically valid DIDs and counts the rest.
func ValidDIDs(dids []string) (valid []string, skipped int) {
	valid = make([]string, 0, len(dids))
	for _, d := range dids {
		if _, err := syntax.ParseDID(d); err != nil {
			skipped++
			continue
		}
		valid = append(valid, d)
	}
	return valid, skipped
}
