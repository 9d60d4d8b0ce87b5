package jobs

import (
	"cmp"
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// Config is what the River client and the workers need.
type Config struct {
	Pool   *pgxpool.Pool
	Index  *rocksindex.Index
	Source *source.Client
	Logger *slog.Logger
	// PageLimit is the page size asked of sources; PagePause the least time between two
	// pages of one collection; Concurrency how many collections page at once.
	PageLimit   int
	PagePause   time.Duration
	Concurrency int
	// PageMaxAttempts is each page job's retry budget (DefaultPageMaxAttempts when 0).
	PageMaxAttempts int

	// beforeCommit is PageWorker.beforeCommit (tests only).
	beforeCommit func(ctx context.Context, collection string) error
	// beforeResetFinish is ResetWorker.beforeFinish (tests only).
	beforeResetFinish func(ctx context.Context, collection string) error
}

// NewRiverClient builds the River client that runs the backfill's workers.
//
// Tuned for chains of page jobs: River wakes a queue's producer with LISTEN/NOTIFY at commit,
// debounced by FetchCooldown, so a chain's per-link overhead is about FetchCooldown (100 ms
// with River's defaults, 10 ms here). A job killed with its process is rescued once older than
// RescueStuckJobsAfter, checked when a client becomes leader (about 15 s after the old leader
// died) and every 30 s after; at the page job timeout, the first check already qualifies, so
// an interrupted chain resumes within a minute of a restart (measured by the end-to-end test).
func NewRiverClient(cfg Config) (*river.Client[pgx.Tx], error) {
	pageTimeout := PageJobTimeout(cfg.PagePause)
	maxAttempts := cmp.Or(cfg.PageMaxAttempts, DefaultPageMaxAttempts)
	workers := river.NewWorkers()
	river.AddWorker(workers, &PageWorker{
		Pool:        cfg.Pool,
		Index:       cfg.Index,
		Source:      cfg.Source,
		Logger:      cfg.Logger,
		Limit:       cfg.PageLimit,
		Pause:       cfg.PagePause,
		MaxAttempts: maxAttempts,
		timeout:     pageTimeout,

		beforeCommit: cfg.beforeCommit,
	})
	river.AddWorker(workers, &RunWorker{Pool: cfg.Pool})
	river.AddWorker(workers, &ResetWorker{
		Pool: cfg.Pool, Index: cfg.Index, PageTimeout: pageTimeout, PageMaxAttempts: maxAttempts,

		beforeFinish: cfg.beforeResetFinish,
	})
	return river.NewClient(riverpgxv5.New(cfg.Pool), &river.Config{
		Logger:  cfg.Logger,
		Workers: workers,
		Queues: map[string]river.QueueConfig{
			QueuePages: {
				MaxWorkers:        max(cfg.Concurrency, 1),
				FetchCooldown:     10 * time.Millisecond,
				FetchPollInterval: 50 * time.Millisecond,
			},
			QueueRuns:        {MaxWorkers: 1},
			QueueMaintenance: {MaxWorkers: 1},
		},
		// Client-level too: River also throttles its insert notifications to one per
		// FetchCooldown per queue, and a dropped notification leaves a link to the poll.
		FetchCooldown:        10 * time.Millisecond,
		FetchPollInterval:    50 * time.Millisecond,
		JobTimeout:           pageTimeout,
		RescueStuckJobsAfter: rescueAfter(pageTimeout),
	})
}
