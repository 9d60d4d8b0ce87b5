package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// ErrRunning is returned by Start while another run is live.
var ErrRunning = errors.New("a backfill is already running")

// ErrCancelPending is returned by Start while cancelled page jobs are still running (their
// process may have died mid-page): a start now would skip their collections, which would
// then end with no chain.
var ErrCancelPending = errors.New("cancelled page jobs are still running")

// Backfill is the job system (built by New): it starts runs and reports on them, and the
// admin API is a thin layer over it.
type Backfill struct {
	Pool       *pgxpool.Pool
	River      *river.Client[pgx.Tx]
	Index      *rocksindex.Index
	Discoverer *Discoverer
	// PageMaxAttempts is each page job's retry budget (DefaultPageMaxAttempts when 0).
	PageMaxAttempts int
	// PagePause is the workers' pause between two pages of a collection: part of a page
	// job's timeout, which bounds how long a cancel waits.
	PagePause time.Duration
	// Metrics is what the jobs record into (Config.Metrics, or New's private set).
	Metrics *metrics.Metrics

	// cancelWait bounds Cancel's wait for cancelled jobs (tests only; a page timeout and 5 s).
	cancelWait time.Duration

	logger            *slog.Logger
	releaseClientLock func()
	// verifyMaxAttempts is each verify job's retry budget (Config.VerifyMaxAttempts).
	verifyMaxAttempts int
	// completion is the completion epoch (completion.go).
	completion atomic.Int64
	// gapRepairSource is Config.GapRepairSource; gapRepairWait the wait for a live run
	// before a gap's refresh asks again (gapRepairWait when 0; tests shorten it).
	gapRepairSource *source.Source
	gapRepairWait   time.Duration
	// gapRepairReady is Config.GapRepairReady.
	gapRepairReady func(ctx context.Context) error
	// sweepSource asks relays for their account lists (sweep.go), under the sources' rate
	// caps; sweepSlice is how long a sweep job pages before it snoozes (sweepSlice when 0;
	// tests shorten it).
	sweepSource *source.Client
	sweepSlice  time.Duration
	// sweepAfterBackfill is Config.SweepAfterBackfill; sweepAfterBackfillWait the watcher's
	// wait for live pages (sweep_after.go; tests shorten it).
	sweepAfterBackfill     string
	sweepAfterBackfillWait time.Duration
	// afterSweepAnswer, when set (tests only), runs after each answer of the relay to a sweep.
	afterSweepAnswer func()
}

func (b *Backfill) maxAttempts() int { return cmp.Or(b.PageMaxAttempts, DefaultPageMaxAttempts) }

func (b *Backfill) pageTimeout() time.Duration { return PageJobTimeout(b.PagePause) }

// StartResult describes an accepted run.
type StartResult struct {
	RunID int64 `json:"run_id" doc:"Identifier of the run."`
	// Collections is zlay's "collections": how many collections the run pages.
	Collections      int    `json:"collections" doc:"Collections this run pages: every collection not yet complete."`
	Discovered       int    `json:"discovered" doc:"Collections found by discovery (lexicon list ∪ index ∪ the source's own collection list, when it serves one)."`
	Added            int    `json:"added" doc:"Discovered collections that had no progress row yet."`
	AlreadyComplete  int    `json:"already_complete" doc:"Collections skipped because an earlier run completed them."`
	LexiconListError string `json:"lexicon_list_error,omitempty" doc:"Why the lexicon list could not be read, when it could not."`
	IndexScanError   string `json:"index_scan_error,omitempty" doc:"Why the index could not be scanned, when it could not."`
	SourceListError  string `json:"source_list_error,omitempty" doc:"Why the source's collection list (/v1/listCollections) could not be read, when it serves one and it could not."`
	// LexiconListDropped is what the cap left out.
	LexiconListDropped int `json:"lexicon_list_dropped,omitempty" doc:"Lexicon-list collections left out because the list named more than the cap (lexicon_list_max, default 5000)."`
	// Refreshed and GapsRepairing describe a refresh.
	Refreshed     int `json:"refreshed,omitempty" doc:"With refresh: collections reopened to be paged again from the beginning (completed ones included), keeping what the index holds."`
	GapsRepairing int `json:"gaps_repairing,omitempty" doc:"With refresh: open stream gaps this run repairs (their missed adds are back once every collection is complete again)."`
}

// StartOptions are a start's settings beyond its source.
type StartOptions struct {
	// LexiconListMax caps the collections the lexicon list adds (DefaultLexiconListMax when 0).
	LexiconListMax int
	// SourceNamed is true when the operator named the source: the start is then refused
	// (ErrSourceMismatch) while collections it would page are bound to another one.
	SourceNamed bool
	// Refresh reopens every collection, completed ones too, so the run pages them all again
	// from the beginning, keeping what the index holds: the repair of a stream gap (gaps.go),
	// whose open gaps the run takes on.
	Refresh bool
}

// Start discovers collections and starts paging every incomplete one from its own row's
// source; src is the source of collections that have no row yet. It returns ErrRunning
// while a run is live.
func (b *Backfill) Start(ctx context.Context, src source.Source) (StartResult, error) {
	return b.StartWith(ctx, src, StartOptions{})
}

// StartWith is Start with options.
func (b *Backfill) StartWith(ctx context.Context, src source.Source, opts StartOptions) (StartResult, error) {
	// Cheap early answer, so a refused start does not fetch the lexicon list. The unique
	// insert below is what actually decides.
	if live, err := anyLive(ctx, b.River, RunKind); err != nil {
		return StartResult{}, err
	} else if live {
		return StartResult{}, ErrRunning
	}
	if pending, err := cancelPending(ctx, b.River); err != nil {
		return StartResult{}, err
	} else if len(pending) > 0 {
		return StartResult{}, fmt.Errorf("%w: %s; they end when their worker returns or River's rescuer reaches them "+
			"(within about %s of their start), then start again", ErrCancelPending, describeJobs(pending), rescueAfter(b.pageTimeout()))
	}
	found := b.Discoverer.DiscoverFrom(ctx, src, opts.LexiconListMax)
	if opts.Refresh {
		if err := found.completeForRefresh(); err != nil {
			return StartResult{}, err
		}
	}

	tx, err := b.Pool.Begin(ctx)
	if err != nil {
		return StartResult{}, fmt.Errorf("start backfill: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	added, err := queries.ProgressInsertMany(ctx, tx, pgstore.ProgressInsertManyParams{
		Collections: found.Collections,
		Source:      src.Name,
	})
	if err != nil {
		return StartResult{}, fmt.Errorf("record collections: %w", err)
	}
	var refreshed int64
	if opts.Refresh {
		if refreshed, err = queries.ProgressRefreshAll(ctx, tx); err != nil {
			return StartResult{}, fmt.Errorf("refresh collections: %w", err)
		}
	}
	incomplete, err := queries.ProgressListIncomplete(ctx, tx)
	if err != nil {
		return StartResult{}, fmt.Errorf("list incomplete collections: %w", err)
	}
	if opts.SourceNamed {
		if err := checkStartSource(incomplete, src); err != nil {
			return StartResult{}, err
		}
	}
	completed, err := queries.ProgressCountCompleted(ctx, tx)
	if err != nil {
		return StartResult{}, fmt.Errorf("count completed collections: %w", err)
	}
	run, err := queries.RunInsert(ctx, tx, pgstore.RunInsertParams{
		Source:           src.Name,
		Discovered:       int32(len(found.Collections)),
		Enqueued:         int32(len(incomplete)),
		LexiconListError: found.LexiconListError,
		IndexScanError:   found.IndexScanError,

		LexiconListDropped: int32(found.LexiconListDropped),
	})
	if err != nil {
		return StartResult{}, fmt.Errorf("record run: %w", err)
	}

	res, err := b.River.InsertTx(ctx, tx, RunArgs{RunID: run.ID, Source: src.Name}, nil)
	if err != nil {
		return StartResult{}, fmt.Errorf("enqueue run: %w", err)
	}
	if res.UniqueSkippedAsDuplicate {
		return StartResult{}, ErrRunning
	}
	var gaps int64
	if opts.Refresh {
		if gaps, err = queries.GapsAssignRun(ctx, tx, run.ID); err != nil {
			return StartResult{}, fmt.Errorf("assign stream gaps to the refresh: %w", err)
		}
	}
	if len(incomplete) > 0 {
		// Largest first: River works jobs of one priority in insertion order, so the
		// longest chains start at once.
		orderLargestFirst(incomplete, b.Index)
		params := make([]river.InsertManyParams, len(incomplete))
		for i, row := range incomplete {
			params[i] = firstPage(row, b.maxAttempts())
		}
		// A collection whose chain is still live (say, resumed after a restart) is skipped
		// as a duplicate: that is the one-chain-per-collection guarantee doing its job.
		if _, err := b.River.InsertManyTx(ctx, tx, params); err != nil {
			return StartResult{}, fmt.Errorf("enqueue pages: %w", err)
		}
		// It waits for the run, completed or cancelled, and its chains, completed or stopped.
		if err := askSweepAfterBackfill(ctx, b.River, tx, b.sweepAfterBackfill); err != nil {
			return StartResult{}, err
		}
	}
	commit := func() error { return tx.Commit(ctx) }
	if opts.Refresh {
		commit = func() error { return b.leavingComplete(func() error { return tx.Commit(ctx) }) }
	}
	if err := commit(); err != nil {
		return StartResult{}, fmt.Errorf("start backfill: %w", err)
	}
	return StartResult{
		Refreshed:     int(refreshed),
		GapsRepairing: int(gaps),

		RunID:            run.ID,
		Collections:      len(incomplete),
		Discovered:       len(found.Collections),
		Added:            int(added),
		AlreadyComplete:  int(completed),
		LexiconListError: found.LexiconListError,
		IndexScanError:   found.IndexScanError,
		SourceListError:  found.SourceListError,

		LexiconListDropped: found.LexiconListDropped,
	}, nil
}

// Status is the progress of every collection, in the shape zlay operators script against;
// fields beyond zlay's are additions, none of zlay's change.
type Status struct {
	Running       bool               `json:"running" doc:"True while any backfill job (run, page or collection reset) is live."`
	Paused        bool               `json:"paused" doc:"True while paging is paused (see pauseBackfill)."`
	Total         int                `json:"total" doc:"Collections with a progress row."`
	Completed     int                `json:"completed" doc:"Collections paged to the end."`
	InProgress    int                `json:"in_progress" doc:"Collections not yet complete."`
	TotalImported int64              `json:"total_imported" doc:"Sum of imported over all collections."`
	Collections   []CollectionStatus `json:"collections"`
	LastRun       *RunStatus         `json:"last_run,omitempty" doc:"The most recent run, when there has been one."`
}

// CollectionStatus is one collection's progress.
type CollectionStatus struct {
	Collection string     `json:"collection"`
	Source     string     `json:"source" doc:"The source relay this collection is paged from."`
	Imported   int64      `json:"imported" doc:"Valid DIDs received across committed pages."`
	Indexed    int64      `json:"indexed" doc:"DIDs the index lists for the collection now (backfill and stream, less removals and inactive accounts): the count /v1/listCollections serves."`
	Completed  bool       `json:"completed"`
	Cursor     string     `json:"cursor,omitempty" doc:"The source's cursor to resume from. The status list shows it for incomplete collections only; the collection detail always."`
	Skipped    int64      `json:"skipped" doc:"Entries the source sent that were not valid DIDs (never indexed)."`
	Pages      int64      `json:"pages" doc:"Pages committed."`
	Error      string     `json:"error,omitempty" doc:"The last failure since the last committed page."`
	LastPageAt *time.Time `json:"last_page_at,omitempty" doc:"When the last page was committed."`
	// Resetting is true while a reset job removes the collection's DIDs.
	Resetting    bool  `json:"resetting,omitempty" doc:"True while a reset removes the collection's DIDs from the index; it pages again once they are gone."`
	ResetRemoved int64 `json:"reset_removed,omitempty" doc:"DIDs the reset under way has removed so far (while resetting), or the last reset removed."`
}

// RunStatus describes one run.
type RunStatus struct {
	ID               int64      `json:"id"`
	Source           string     `json:"source" doc:"The source the start named: the collections it discovered were bound to it. Every collection pages from its own source (collections[].source)."`
	StartedAt        time.Time  `json:"started_at"`
	FinishedAt       *time.Time `json:"finished_at,omitempty"`
	Discovered       int        `json:"discovered"`
	Enqueued         int        `json:"enqueued"`
	LexiconListError string     `json:"lexicon_list_error,omitempty"`
	IndexScanError   string     `json:"index_scan_error,omitempty"`
	CancelledAt      *time.Time `json:"cancelled_at,omitempty"`
	// LexiconListDropped is what the discovery cap left out of this run.
	LexiconListDropped int `json:"lexicon_list_dropped,omitempty" doc:"Lexicon-list collections the cap left out of this run."`
}

// Status reads every collection's progress and whether a backfill is live.
func (b *Backfill) Status(ctx context.Context) (Status, error) {
	running, err := anyLive(ctx, b.River, RunKind, PageKind, ResetKind)
	if err != nil {
		return Status{}, err
	}
	rows, err := queries.ProgressList(ctx, b.Pool)
	if err != nil {
		return Status{}, fmt.Errorf("list progress: %w", err)
	}
	paused, err := b.Paused(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{Running: running, Paused: paused, Total: len(rows), Collections: make([]CollectionStatus, len(rows))}
	for i, r := range rows {
		c := collectionStatus(r)
		c.Indexed = b.Index.Count(r.Collection)
		if c.Completed {
			st.Completed++
		}
		st.TotalImported += r.ImportedCount
		st.Collections[i] = c
	}
	st.InProgress = st.Total - st.Completed

	run, err := queries.RunGetLatest(ctx, b.Pool)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return Status{}, fmt.Errorf("latest run: %w", err)
	default:
		st.LastRun = &RunStatus{
			ID: run.ID, Source: run.Source, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt,
			Discovered: int(run.Discovered), Enqueued: int(run.Enqueued),
			LexiconListError: run.LexiconListError, IndexScanError: run.IndexScanError,
			CancelledAt: run.CancelledAt, LexiconListDropped: int(run.LexiconListDropped),
		}
	}
	return st, nil
}
