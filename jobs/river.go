package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// Defaults of Config, which serve's flags show as theirs.
const (
	DefaultPageLimit   = 1000
	DefaultPagePause   = 100 * time.Millisecond
	DefaultConcurrency = 8
)

// Config is everything the job system needs. New fills the zero values with the defaults
// (WithDefaults) and refuses what cannot work (validate), once, for serve and every test.
type Config struct {
	Pool   *pgxpool.Pool
	Index  *rocksindex.Index
	Source *source.Client
	Logger *slog.Logger
	// Metrics is what the jobs record into (serve passes the set it serves at /metrics). Nil
	// means a private metrics.New(), readable as Backfill.Metrics: tests need not build one.
	// A nil Source is then built recording into the same set.
	Metrics *metrics.Metrics
	// PageLimit is the page size asked of sources (1..10000); PagePause the least time
	// between two pages of one collection; Concurrency how many collections page at once.
	PageLimit   int
	PagePause   time.Duration
	Concurrency int
	// PageMaxAttempts is each page job's retry budget.
	PageMaxAttempts int
	// LexiconListURL is Lexicon Garden's llms.txt (or a stand-in); empty disables it.
	LexiconListURL string
	// BeforeFetch, when set, runs before every page fetch: the live stream uses it to go
	// first while it is behind (firehose.WaitCaughtUp). An error fails the page attempt.
	BeforeFetch func(ctx context.Context) error

	// PLCURL is the PLC directory that resolves did:plc for the verify jobs (DefaultPLCURL
	// when empty); the one private address they may reach without VerifyAllowPrivate.
	PLCURL string
	// PDSRate caps the verify jobs' requests per second to any one PDS host (DefaultPDSRate
	// when 0; negative means no cap).
	PDSRate float64
	// PDSTimeout bounds one DID resolution or PDS request (DefaultPDSTimeout when 0).
	PDSTimeout time.Duration
	// VerifyWorkers is how many verify jobs run at once (DefaultVerifyWorkers when 0).
	VerifyWorkers int
	// VerifyMaxAttempts is each verify job's retry budget (DefaultVerifyMaxAttempts when 0).
	VerifyMaxAttempts int
	// VerifyAllowPrivate lets the verify jobs reach loopback and private addresses and any
	// port. Off, a DID document (which anyone can write) cannot point colindex at an
	// internal service; turn it on only where PDSes live on a private network.
	VerifyAllowPrivate bool
	// GapRepairSource, when set, is the source of the refresh run each new stream gap starts
	// (gaps.go); nil records gaps and leaves their repair to an operator.
	GapRepairSource *source.Source
	// GapRepairReady, when set, is asked before a gap's refresh starts; an error puts it off
	// (a replica waits until its peer has no open gap: its pages would copy the peer's hole).
	GapRepairReady func(ctx context.Context) error
	// SweepAfterBackfill, when set, is the relay (its stream URL) whose account list is swept
	// once the backfill's pages are done (sweep_after.go): the accounts a source still lists
	// that the relay holds deleted leave the index. Empty: only gaps and operators sweep.
	SweepAfterBackfill string

	// verifyTransport, when set (tests only), adjusts the verify HTTP transport.
	verifyTransport func(*http.Transport)
	// beforeCommit is PageWorker.beforeCommit (tests only).
	beforeCommit func(ctx context.Context, collection string) error
	// beforeIndexWrite is PageWorker.beforeIndexWrite (tests only).
	beforeIndexWrite func(collection string)
	// beforeResetFinish is ResetWorker.beforeFinish (tests only).
	beforeResetFinish func(ctx context.Context, collection string) error
}

// WithDefaults returns a copy of the config with every unset setting at its default.
func (c Config) WithDefaults() Config {
	if c.PageLimit == 0 {
		c.PageLimit = DefaultPageLimit
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.PageMaxAttempts == 0 {
		c.PageMaxAttempts = DefaultPageMaxAttempts
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	if c.Source == nil {
		c.Source = source.NewClient(0, source.WithMetrics(c.Metrics))
	}
	if c.PLCURL == "" {
		c.PLCURL = DefaultPLCURL
	}
	if c.PDSRate == 0 {
		c.PDSRate = DefaultPDSRate
	}
	if c.PDSTimeout == 0 {
		c.PDSTimeout = DefaultPDSTimeout
	}
	if c.VerifyWorkers == 0 {
		c.VerifyWorkers = DefaultVerifyWorkers
	}
	if c.VerifyMaxAttempts == 0 {
		c.VerifyMaxAttempts = DefaultVerifyMaxAttempts
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Pool == nil:
		return errors.New("jobs: Config.Pool is required")
	case c.Index == nil:
		return errors.New("jobs: Config.Index is required")
	case c.PageLimit < 1 || c.PageLimit > 10000:
		return fmt.Errorf("jobs: page limit must be 1..10000, not %d", c.PageLimit)
	case c.PagePause < 0:
		return errors.New("jobs: page pause must not be negative")
	case c.Concurrency < 1:
		return fmt.Errorf("jobs: concurrency must be at least 1, not %d", c.Concurrency)
	case c.PageMaxAttempts < 1:
		return fmt.Errorf("jobs: page max attempts must be at least 1, not %d", c.PageMaxAttempts)
	case !validPLCURL(c.PLCURL):
		return fmt.Errorf("jobs: PLC URL must be http(s)://host[:port] with no path, not %q", c.PLCURL)
	case c.PDSTimeout < 0:
		return errors.New("jobs: PDS timeout must not be negative")
	case c.VerifyWorkers < 1:
		return fmt.Errorf("jobs: verify workers must be at least 1, not %d", c.VerifyWorkers)
	case c.VerifyMaxAttempts < 1:
		return fmt.Errorf("jobs: verify max attempts must be at least 1, not %d", c.VerifyMaxAttempts)
	}
	return nil
}

// New builds the job system: the workers, the River client that runs them, discovery, and
// the Backfill API over them. Start its workers with StartWorkers.
//
// Tuned for chains of page jobs: River wakes a queue's producer with LISTEN/NOTIFY at commit,
// debounced by FetchCooldown, so a chain's per-link overhead is about FetchCooldown (100 ms
// with River's defaults). 2 ms here: with pages of 1,000 from a fast source a link is 20–40
// ms of work, and at 10 ms the wait from a page's commit to River fetching the next was 5–7
// ms a link (1.6 ms at 2 ms, measured on 2 cores with 8 workers; issue 13). It costs a fetch
// query per notification at most, not more polling. The poll is the fallback for a job whose
// notification the throttle dropped: the pages queue polls every 200 ms, the others at
// River's default second. Every queue at 50 ms was 80 fetch queries a second with nothing to
// do, and an idle serve took 8% of a core and its Postgres backends 2%; now 1.4% and 0.3%.
// A page chain does not wait for the poll while other chains' notifications wake the
// producer; at the end of a backfill it can, and a 1 s poll there added up to a second to
// the 34 s of the benchmark's capped backfill, where 200 ms and 50 ms measured the same
// (34.28-34.32 s in three runs each; make bench). A job killed
// with its process is rescued by the next start (RescueOrphans), or by River's rescuer once
// older than its timeout.
func New(cfg Config) (*Backfill, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pageTimeout := PageJobTimeout(cfg.PagePause)
	workers := river.NewWorkers()
	river.AddWorker(workers, &PageWorker{
		Pool:        cfg.Pool,
		Index:       cfg.Index,
		Source:      cfg.Source,
		Logger:      cfg.Logger,
		Limit:       cfg.PageLimit,
		Pause:       cfg.PagePause,
		MaxAttempts: cfg.PageMaxAttempts,
		BeforeFetch: cfg.BeforeFetch,
		metrics:     cfg.Metrics,
		timeout:     pageTimeout,
		gate:        newIndexGate(indexGateShared),
		sweepRelay:  cfg.SweepAfterBackfill,

		beforeCommit:     cfg.beforeCommit,
		beforeIndexWrite: cfg.beforeIndexWrite,
	})
	river.AddWorker(workers, &RunWorker{Pool: cfg.Pool})
	river.AddWorker(workers, &ResetWorker{
		Pool: cfg.Pool, Index: cfg.Index, PageTimeout: pageTimeout, PageMaxAttempts: cfg.PageMaxAttempts,
		sweepRelay: cfg.SweepAfterBackfill,

		beforeFinish: cfg.beforeResetFinish,
	})
	verify := &verifier{
		index:   cfg.Index,
		log:     cfg.Logger.With("component", "verify"),
		metrics: cfg.Metrics,
		pds: newPDSClient(newVerifyHTTP(verifyHTTPOptions{
			timeout: cfg.PDSTimeout, plcURL: cfg.PLCURL, allowPrivate: cfg.VerifyAllowPrivate,
			tweak: cfg.verifyTransport,
		}), cfg.PLCURL, cfg.PDSRate, cfg.Metrics),
	}
	river.AddWorker(workers, &VerifyCollectionWorker{v: verify})
	river.AddWorker(workers, &VerifyRepoWorker{v: verify})
	repair := &RepairGapWorker{} // its Backfill is the one built below
	river.AddWorker(workers, repair)
	sweep := &AccountSweepWorker{}
	river.AddWorker(workers, sweep)
	sweepAfter := &SweepAfterBackfillWorker{}
	river.AddWorker(workers, sweepAfter)
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), &river.Config{
		Logger:  cfg.Logger,
		Workers: workers,
		Queues: map[string]river.QueueConfig{
			QueuePages: {
				MaxWorkers:        cfg.Concurrency,
				FetchCooldown:     2 * time.Millisecond,
				FetchPollInterval: 200 * time.Millisecond,
			},
			QueueRuns:        {MaxWorkers: 1},
			QueueMaintenance: {MaxWorkers: 1},
			QueueVerify:      {MaxWorkers: cfg.VerifyWorkers},
		},
		// Client-level too: River also throttles its insert notifications to one per
		// FetchCooldown per queue, and a dropped notification leaves a link to the poll.
		FetchCooldown:        2 * time.Millisecond,
		JobTimeout:           pageTimeout,
		RescueStuckJobsAfter: rescueAfter(pageTimeout),
		// Cancelled jobs stay as long as discarded ones (River's default is a day): a sweep
		// counts the checks cancelled during its hours-long walk when it finishes.
		CancelledJobRetentionPeriod: 7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("river: %w", err)
	}
	b := &Backfill{
		Pool:  cfg.Pool,
		River: client,
		Index: cfg.Index,
		Discoverer: &Discoverer{
			HTTP: cfg.Source.HTTP(), LexiconListURL: cfg.LexiconListURL, Index: cfg.Index, Source: cfg.Source,
		},
		PageMaxAttempts: cfg.PageMaxAttempts,
		PagePause:       cfg.PagePause,
		Metrics:         cfg.Metrics,
		logger:          cfg.Logger,

		verifyMaxAttempts: cfg.VerifyMaxAttempts,
		gapRepairSource:   cfg.GapRepairSource,
		gapRepairReady:    cfg.GapRepairReady,
		sweepSource:       cfg.Source,

		sweepAfterBackfill: cfg.SweepAfterBackfill,
	}
	repair.b, sweep.b, sweepAfter.b = b, b, b
	return b, nil
}

// StartWorkers starts working jobs on ctx. While this process lives, its River client's jobs
// are its own (HoldClientLock); jobs that a dead process left running are rescued at once.
func (b *Backfill) StartWorkers(ctx context.Context) error {
	release, err := HoldClientLock(ctx, b.Pool, b.River.ID())
	if err != nil {
		return err
	}
	if err := b.River.Start(ctx); err != nil {
		release()
		return fmt.Errorf("start river: %w", err)
	}
	b.releaseClientLock = release
	if n, err := RescueOrphans(ctx, b.Pool, b.River); err != nil {
		b.logger.WarnContext(ctx, "rescue jobs of a dead process; River's rescuer will", "error", err)
	} else if n > 0 {
		b.logger.InfoContext(ctx, "rescued jobs left running by a process that died", "jobs", n)
	}
	if err := b.watchForSweepAfterBackfill(ctx); err != nil {
		b.logger.ErrorContext(ctx, "the backfill's pages may go unswept until the next start, retry or restart", "error", err)
	}
	return nil
}

// StopWorkers lets running jobs finish within ctx, then cancels what still runs (waiting up
// to hardStop more). It reports false when a job may still be running: the index must then
// stay open.
func (b *Backfill) StopWorkers(ctx context.Context, hardStop time.Duration) bool {
	stopped := true
	if err := b.River.Stop(ctx); err != nil {
		b.logger.Warn("river did not stop in time; cancelling running jobs", "error", err)
		hardCtx, cancel := context.WithTimeout(context.Background(), hardStop)
		defer cancel()
		stopped = b.River.StopAndCancel(hardCtx) == nil
	}
	if stopped && b.releaseClientLock != nil {
		b.releaseClientLock()
	}
	return stopped
}

// validPLCURL accepts what indigo's BaseDirectory expects: scheme and host, no path.
func validPLCURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		strings.Trim(u.Path, "/") == "" && u.RawQuery == "" && u.Fragment == ""
}
