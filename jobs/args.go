package jobs

import (
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Queues. Page jobs get their own queue so their worker count is the backfill's concurrency
// and their fetch latency can be tuned for chains without touching anything else.
const (
	QueuePages = "backfill_pages"
	QueueRuns  = "backfill_runs"
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
}

// PageKind is the River kind of page jobs.
const PageKind = "backfill_page"

// Page job priorities (River: 1 is worked first). A chain's next link outranks every chain
// that has not started, so a started chain keeps its worker until it ends: the largest
// collections, started first, page without a gap, and the rest share the remaining workers.
const (
	priorityNextPage  = 1
	priorityFirstPage = 2
)

func (PageArgs) Kind() string { return PageKind }

func (PageArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueuePages,
		MaxAttempts: pageMaxAttempts,
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
