package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/source"
)

// ErrSourceMismatch is returned by a start that names a source other than the one some of the
// collections it would page are bound to: a start never moves a collection (MoveSource does).
var ErrSourceMismatch = errors.New("collections are bound to another source")

// errSourceMoved ends a page whose collection moved to another source while it was fetched:
// the page is dropped and the job pages again from the row as the move left it.
var errSourceMoved = errors.New("collection moved to another source")

// Cursor choices of a move.
const (
	// MoveKeepCursor keeps each collection's cursor, counts and completion: for a source that
	// shares the old one's cursors (another name or replica of the same service).
	MoveKeepCursor = "keep"
	// MoveRestartCursor pages each collection again from the beginning on the new source.
	MoveRestartCursor = "restart"
)

// MoveRequest names the collections to move and how.
type MoveRequest struct {
	Source source.Source
	// All moves every collection; otherwise Collections names them.
	All         bool
	Collections []string
	// Restart clears cursors and counts (MoveRestartCursor); false keeps them.
	Restart bool
}

// MoveResult says what a move changed.
type MoveResult struct {
	Source string            `json:"source" doc:"The source the moved collections are now bound to."`
	Cursor string            `json:"cursor" enum:"keep,restart" doc:"Whether the moved collections kept their cursors or page again from the beginning."`
	Moved  []MovedCollection `json:"moved" doc:"The collections moved, each with the source it left."`
	// Unchanged counts what was asked for but already bound to the source.
	Unchanged  int `json:"unchanged" doc:"Collections asked for that were already bound to the source: left exactly as they were."`
	Continuing int `json:"continuing" doc:"Moved collections whose live chain goes on from the new source with its next page (a page in flight from the old source is dropped and fetched again)."`
	Enqueued   int `json:"enqueued" doc:"Moved incomplete collections that had no live chain and now page from the new source, because a run is live."`
	Waiting    int `json:"waiting" doc:"Moved incomplete collections with no live chain and no live run: the next start pages them from the new source."`
}

// MovedCollection is one collection a move changed.
type MovedCollection struct {
	Collection string `json:"collection"`
	From       string `json:"from" doc:"The source the collection was bound to."`
	Completed  bool   `json:"completed" doc:"True when the collection stays complete (its cursor was kept)."`
}

// MoveSource binds collections to another source, in one transaction, keeping or clearing
// their cursors. It is safe against a page of a moved collection committing at the same
// time: the move takes the rows' locks, so a page that committed first is part of what the
// move keeps, and one that commits after finds the source generation changed and is dropped
// (PageWorker.commit), its job paging again from the new source. A live chain therefore goes
// on from the new source; a moved incomplete collection without one is enqueued while a run
// is live (one chain per collection: page jobs are unique), and otherwise waits for a start.
func (b *Backfill) MoveSource(ctx context.Context, req MoveRequest) (MoveResult, error) {
	res := MoveResult{Source: req.Source.Name, Cursor: MoveKeepCursor, Moved: []MovedCollection{}}
	if req.Restart {
		res.Cursor = MoveRestartCursor
	}
	if !req.All && len(req.Collections) == 0 {
		return res, errors.New("move: name the collections, or all")
	}
	tx, err := b.Pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("move: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit

	rows, err := queries.ProgressListForMove(ctx, tx, pgstore.ProgressListForMoveParams{
		Every: req.All, Collections: req.Collections,
	})
	if err != nil {
		return res, fmt.Errorf("move: lock collections: %w", err)
	}
	if !req.All {
		if missing := missingCollections(req.Collections, rows); len(missing) > 0 {
			return res, fmt.Errorf("%w: %s", ErrNoSuchCollection, strings.Join(missing, ", "))
		}
	}
	chains, err := liveChains(ctx, b.River, tx)
	if err != nil {
		return res, err
	}
	var stopped []pgstore.BackfillProgress
	for _, row := range rows {
		if row.Source == req.Source.Name {
			res.Unchanged++
			continue
		}
		moved, err := queries.ProgressMoveSource(ctx, tx, pgstore.ProgressMoveSourceParams{
			Collection: row.Collection, Source: req.Source.Name, Restart: req.Restart,
		})
		if err != nil {
			return res, fmt.Errorf("move %s: %w", row.Collection, err)
		}
		res.Moved = append(res.Moved, MovedCollection{
			Collection: row.Collection, From: row.Source, Completed: moved.CompletedAt != nil && moved.ResettingSince == nil,
		})
		if moved.CompletedAt != nil {
			continue // complete, or being reset (its reset job reopens it and enqueues its chain)
		}
		job, live := chains[row.Collection]
		if !live {
			stopped = append(stopped, moved)
			continue
		}
		res.Continuing++
		if job.State == rivertype.JobStateRetryable {
			// Backing off from the old source's failures: the new source is tried now.
			if _, err := b.River.JobRetryTx(ctx, tx, job.ID); err != nil && !errors.Is(err, river.ErrNotFound) {
				return res, fmt.Errorf("move %s: retry its chain now: %w", row.Collection, err)
			}
		}
	}
	if len(stopped) > 0 {
		if res.Enqueued, err = b.enqueueIfRunLive(ctx, tx, stopped); err != nil {
			return res, err
		}
		res.Waiting = len(stopped) - res.Enqueued
	}
	if err := b.leavingComplete(func() error { return tx.Commit(ctx) }); err != nil {
		return res, fmt.Errorf("move: %w", err)
	}
	return res, nil
}

// enqueueIfRunLive starts the chains of moved collections that had none, when a run is live:
// a run pages every incomplete collection, and a move should not leave one behind. With no run
// live nothing is started (an operator who cancelled meant it); the next start pages them.
func (b *Backfill) enqueueIfRunLive(ctx context.Context, tx pgx.Tx, rows []pgstore.BackfillProgress) (int, error) {
	runs, err := b.River.JobListTx(ctx, tx, river.NewJobListParams().Kinds(RunKind).States(liveStates...).First(1))
	if err != nil {
		return 0, fmt.Errorf("move: list live runs: %w", err)
	}
	if len(runs.Jobs) == 0 {
		return 0, nil
	}
	orderLargestFirst(rows, b.Index)
	params := make([]river.InsertManyParams, len(rows))
	for i, row := range rows {
		params[i] = firstPage(row, b.maxAttempts())
	}
	results, err := b.River.InsertManyTx(ctx, tx, params)
	if err != nil {
		return 0, fmt.Errorf("move: enqueue pages: %w", err)
	}
	n := 0
	for _, r := range results {
		if !r.UniqueSkippedAsDuplicate {
			n++
		}
	}
	return n, nil
}

// liveChains maps each collection with a live page job to that job, read in tx.
func liveChains(ctx context.Context, client *river.Client[pgx.Tx], tx pgx.Tx) (map[string]*rivertype.JobRow, error) {
	params := river.NewJobListParams().Kinds(PageKind).States(liveStates...).First(10000)
	out := map[string]*rivertype.JobRow{}
	for {
		res, err := client.JobListTx(ctx, tx, params)
		if err != nil {
			return nil, fmt.Errorf("move: list live chains: %w", err)
		}
		for _, j := range res.Jobs {
			if c, ok := pageCollection(j); ok {
				out[c] = j
			}
		}
		if len(res.Jobs) < 10000 {
			return out, nil
		}
		params = params.After(res.LastCursor)
	}
}

// pageCollection reads the collection a page job pages.
func pageCollection(j *rivertype.JobRow) (string, bool) {
	var args PageArgs
	if err := json.Unmarshal(j.EncodedArgs, &args); err != nil || args.Collection == "" {
		return "", false
	}
	return args.Collection, true
}

func missingCollections(asked []string, rows []pgstore.BackfillProgress) []string {
	have := make(map[string]bool, len(rows))
	for _, r := range rows {
		have[r.Collection] = true
	}
	var missing []string
	for _, c := range asked {
		if !have[c] && !slices.Contains(missing, c) {
			missing = append(missing, c)
		}
	}
	return missing
}

// checkStartSource refuses a start that names src while some of the collections it would
// page are bound to another source. Paging them from their own source would not be what was
// asked, and paging them from src would move them silently: the operator chooses instead.
func checkStartSource(incomplete []pgstore.BackfillProgress, src source.Source) error {
	other := map[string]int{}
	for _, r := range incomplete {
		if r.Source != src.Name {
			other[r.Source]++
		}
	}
	if len(other) == 0 {
		return nil
	}
	var bound []string
	for i, s := range slices.Sorted(maps.Keys(other)) {
		n := fmt.Sprint(other[s])
		if i == 0 {
			n += " of the collections it would page"
			if other[s] == 1 {
				n += " is"
			} else {
				n += " are"
			}
		}
		bound = append(bound, n+" bound to "+s)
	}
	return fmt.Errorf("%w: the start names %s, but %s, and a start never moves a collection. "+
		"To page them from %s: `colindex move-source %s` (POST /admin/backfill-collections/move-source; it keeps "+
		"their cursors, --restart pages them from the beginning), then start again. To page every collection "+
		"from the source it is bound to: start without a source",
		ErrSourceMismatch, src.Name, strings.Join(bound, " and "), src.Name, src.Name)
}
