package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/colindex/colindex/internal/pgstore"
)

// Queues. Page jobs get their own queue so their worker count is the backfill's concurrency
// and their fetch latency can be tuned for chains without touching anything else.
const (
	QueuePages = "backfill_pages"
	QueueRuns  = "backfill_runs"
	// QueueMaintenance runs index maintenance (collection resets) one at a time, apart from
	// the page workers, so a long delete and its compaction never hold up paging.
	QueueMaintenance = "index_maintenance"
)

// liveStates are the states in which a job still holds its unique slot. Completed, cancelled
// and discarded jobs release it, so a finished run or a failed chain never blocks a new one.
// Keep this stable: each row stores the states it was inserted with.
var liveStates = []rivertype.JobState{
	rivertype.JobStateAvailable,
	rivertype.JobStatePending,
	rivertype.JobStateRetryable,
	rivertype.JobStateRunning,
	rivertype.JobStateScheduled,
}

// PageArgs asks for the next page of one collection. The cursor is not in the args: the
// progress row is the only place it lives, so a retried or rescued job always continues from
// what was last committed.
type PageArgs struct {
	Collection string `json:"collection" river:"unique"`
	// Source is informational (River UI shows it); the progress row's source is the one used.
	Source string `json:"source"`
	// PrevPageAt is when the previous page of this collection was fetched, so the worker can
	// keep the per-collection pause without scheduling delays.
	PrevPageAt time.Time `json:"prev_page_at,omitzero"`
	// SeenCursors holds short fingerprints of the chain's recent cursors, so a source that
	// hands back an earlier cursor is caught instead of being followed round in a loop.
	SeenCursors []string `json:"seen_cursors,omitempty"`
}

// maxSeenCursors bounds SeenCursors (17 bytes of JSON each): a loop through more than this
// many distinct cursors would go unnoticed.
const maxSeenCursors = 64

// cursorFingerprint is 8 bytes of the cursor's SHA-256, hex: enough to tell cursors apart.
func cursorFingerprint(cursor string) string {
	sum := sha256.Sum256([]byte(cursor))
	return hex.EncodeToString(sum[:8])
}

// firstPage is the insert of a chain's first job (or of a chain restarted from its cursor).
func firstPage(row pgstore.BackfillProgress, maxAttempts int) river.InsertManyParams {
	return river.InsertManyParams{
		Args:       PageArgs{Collection: row.Collection, Source: row.Source},
		InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts},
	}
}

// PageKind is the River kind of page jobs.
const PageKind = "backfill_page"

// Page job priorities (River: 1 is worked first). A chain's next link outranks every chain
// that has not started, so a started chain keeps its worker until it ends: the largest
// collections, started first, page without a gap, and the rest share the remaining workers.
// A first page that was snoozed outranks the first pages not yet tried (snooze.go): River
// orders one priority by scheduled_at, which a snooze moves past all of them.
const (
	priorityNextPage         = 1
	prioritySnoozedFirstPage = 2
	priorityFirstPage        = 3
)

func (PageArgs) Kind() string { return PageKind }

func (PageArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueuePages,
		MaxAttempts: DefaultPageMaxAttempts,
		Priority:    priorityFirstPage,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// RunArgs is the watcher of one backfill run.
type RunArgs struct {
	RunID  int64  `json:"run_id"`
	Source string `json:"source"`
}

// RunKind is the River kind of the run watcher.
const RunKind = "backfill_run"

func (RunArgs) Kind() string { return RunKind }

func (RunArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue: QueueRuns,
		// Unique by kind alone: one live run at a time, whatever its source.
		UniqueOpts: river.UniqueOpts{ByState: liveStates},
	}
}

// ResetArgs removes one collection's DIDs from the index and reopens its progress row. The
// generation is the row's reset_generation when this reset began: the job only reopens a row
// still at that generation.
type ResetArgs struct {
	Collection string `json:"collection" river:"unique"`
	Generation int64  `json:"generation"`
}

// ResetKind is the River kind of collection resets.
const ResetKind = "collection_reset"

func (ResetArgs) Kind() string { return ResetKind }

func (ResetArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueueMaintenance,
		MaxAttempts: resetMaxAttempts,
		// One live reset per collection: a second request while one runs gets that one.
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}
