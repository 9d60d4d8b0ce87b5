// Package firehose keeps the collection index current by following a relay's
// com.atproto.sync.subscribeRepos stream.
//
// The shape is indigo's cmd/tap: Run dials the relay and feeds indigo's events.HandleRepoStream
// through a scheduler that applies the stream in order, in batches (sched.go), and the
// Handle* methods do the work and can be called with events directly. What tap and
// collectiondir skip is done here: the cursor is a low watermark saved at least once a second,
// never ahead of the index, and an account deletion removes the account's pairs.
//
// Durability: events are applied with unsynced RocksDB writes (they survive a process crash;
// the WAL is in the OS), and a flusher syncs the WAL and only then stores the watermark in
// Postgres. SIGKILL at any moment loses nothing: what the cursor claims is synced, and what
// follows it is replayed, where adds are idempotent sets and removals are final.
//
// One follower per database: Run holds a Postgres session advisory lock on a dedicated
// connection while it follows, and saves the cursor through that same connection, so a
// process that lost the lock cannot move the cursor.
package firehose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

// subscribePath is appended to the relay's base URL.
const subscribePath = "/xrpc/com.atproto.sync.subscribeRepos"

// lockKey is the advisory lock that makes one process per database the follower.
const lockKey = 0x636f6c69_66697265 // "colifire"

// ErrBadURL is returned by New for a relay URL that is not ws:// or wss://.
var ErrBadURL = errors.New("firehose: relay URL must be ws:// or wss://")

// RecordDeleteFunc is told about the record deletes the commit's own proof could not settle
// (no blocks, a partial tree, a commit that does not invert), once per collection: the pair
// is kept, and a check with the account's PDS plugs in here. An error is a failure to apply:
// the stream is replayed from the durable cursor.
type RecordDeleteFunc func(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit, collection string) error

// SyncFunc is told about #sync events (the account's repo was reset; its collections must be
// re-learned, e.g. by a River job). Nil ignores them.
type SyncFunc func(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Sync) error

// Config configures a Firehose. URL, Pool and Index are required.
type Config struct {
	// URL is the relay's base URL, ws:// or wss://, e.g. wss://bsky.network.
	URL string
	// Pool is the database; the lock and the cursor use one dedicated connection made from
	// its config, outside the pool.
	Pool  *pgxpool.Pool
	Index *rocksindex.Index
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics is what the follower records into (serve passes the set it serves at
	// /metrics). Nil means a private metrics.New() that nothing serves: tests and tools need
	// not build one.
	Metrics *metrics.Metrics
	// FlushInterval is how often the WAL is synced and the cursor saved (default 250 ms).
	FlushInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnects (defaults 1 s and 30 s);
	// each wait is jittered.
	MinBackoff, MaxBackoff time.Duration
	// LockRetry is how often a process that does not hold the lock tries again (default 5 s).
	LockRetry time.Duration
	// OnRecordDelete and OnSync are the hooks for the next issues; nil does nothing.
	OnRecordDelete RecordDeleteFunc
	OnSync         SyncFunc
	// OnUnknownActivation is told when an account becomes active whose pairs the index may
	// miss: it was inactive here, or the index holds no pair of it. A replica sets it: its
	// peer's pages leave inactive accounts out, so an account hidden when its pages were
	// copied returns with pairs missing here, to be learned from its PDS. Nil ignores it.
	OnUnknownActivation func(ctx context.Context, did string) error
	// OnGap is told when the relay answers #info OutdatedCursor, or the error frame
	// FutureCursor: the events after afterSeq (the cursor this connection asked from) that the
	// relay no longer has were never applied. The follower goes past the gap only once OnGap
	// returns nil: an error ends the connection, and the next one asks from the same cursor
	// (and hears of the same gap).
	// Serve records the gap and starts its repair (jobs.RecordGap). Nil only logs it.
	// kind is GapOutdatedCursor or GapFutureCursor.
	OnGap func(ctx context.Context, afterSeq int64, kind, message string) error
}

func (c Config) withDefaults() Config {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.Metrics == nil {
		c.Metrics = metrics.New()
	}
	c.FlushInterval = cmp.Or(c.FlushInterval, 250*time.Millisecond)
	c.MinBackoff = cmp.Or(c.MinBackoff, time.Second)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, 30*time.Second)
	c.LockRetry = cmp.Or(c.LockRetry, 5*time.Second)
	return c
}

// The kinds of gap the follower reports to OnGap (jobs records them under the same names).
const (
	GapOutdatedCursor = "outdated_cursor"
	GapFutureCursor   = "future_cursor"
)

// Firehose follows one relay into one index. Create it with New, start it with Run.
type Firehose struct {
	cfg      Config
	relay    string   // the normalised base URL: the cursor's key in Postgres
	endpoint *url.URL // relay + subscribePath
	log      *slog.Logger
	st       stats
	// metrics is cfg.Metrics; commitEvents its events_total{type="commit"}, resolved once
	// for the hot path.
	metrics      *metrics.Metrics
	commitEvents prometheus.Counter

	// decisions holds the record-delete verdicts computed ahead of the applier (decide.go),
	// by commit.
	decisions sync.Map
	// collections checks ops' paths (paths.go).
	collections collections
	// flushNow asks the flusher for a save before its next tick (the starting cursor).
	flushNow chan struct{}
	// behindSince is when bulk work first found the stream behind (unix ns; 0: not behind).
	behindSince atomic.Int64
}

// New checks cfg and returns a Firehose ready to Run.
func New(cfg Config) (*Firehose, error) {
	cfg = cfg.withDefaults()
	if cfg.Pool == nil || cfg.Index == nil {
		return nil, errors.New("firehose: Pool and Index are required")
	}
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadURL, cfg.URL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	relay := u.String()
	endpoint := *u
	endpoint.Path += subscribePath
	f := &Firehose{cfg: cfg, relay: relay, endpoint: &endpoint, log: cfg.Logger.With("component", "firehose", "relay", relay),
		flushNow: make(chan struct{}, 1), metrics: cfg.Metrics,
		commitEvents: cfg.Metrics.FirehoseEvents.WithLabelValues("commit")}
	f.st.cursor.Store(-1)
	return f, nil
}

// Status is the operator's view of the follower.
type Status struct {
	URL string `json:"url"`
	// Following: this process holds the lock (at most one per database does).
	Following bool `json:"following"`
	Connected bool `json:"connected"`
	// Cursor is the durable cursor (-1: none yet).
	Cursor        int64      `json:"cursor"`
	LastEventTime *time.Time `json:"last_event_time"`
	// LagSeconds is the age of the newest applied event when it was applied.
	LagSeconds      float64 `json:"lag_seconds"`
	EventsTotal     int64   `json:"events_total"`
	CommitsTotal    int64   `json:"commits_total"`
	AccountsRemoved int64   `json:"accounts_removed"`
	// PairsRemoved counts pairs removed because the account's last record of the collection
	// was deleted (decided from the commit's MST blocks).
	PairsRemoved int64 `json:"pairs_removed"`
	// RemovalsUndecided counts deletes whose proof could not say whether a record is left.
	RemovalsUndecided int64  `json:"removals_undecided"`
	Reconnects        int64  `json:"reconnects"`
	LastError         string `json:"last_error"`
}

type stats struct {
	following, connected                         atomic.Bool
	cursor                                       atomic.Int64
	lastEventNanos, lagNanos                     atomic.Int64
	events, commits, accountsRemoved, reconnects atomic.Int64
	// pairsRemoved and undecided count record deletes: pairs proved gone and removed, and
	// collections the proof could not settle.
	pairsRemoved, undecided atomic.Int64
	// backlog is how many received events wait to be applied.
	backlog atomic.Int64
	// dialedFrom is the cursor the current connection asked from (-1: none, the live tail);
	// gapAfter the cursor after which this process last reported a gap (OnGap).
	dialedFrom, gapAfter atomic.Int64

	mu      sync.Mutex
	lastErr string
}

// Status returns the follower's counters; safe to call at any time.
func (f *Firehose) Status() Status {
	s := Status{
		URL:             f.relay,
		Following:       f.st.following.Load(),
		Connected:       f.st.connected.Load(),
		Cursor:          f.st.cursor.Load(),
		LagSeconds:      time.Duration(f.st.lagNanos.Load()).Seconds(),
		EventsTotal:     f.st.events.Load(),
		CommitsTotal:    f.st.commits.Load(),
		AccountsRemoved: f.st.accountsRemoved.Load(),

		PairsRemoved:      f.st.pairsRemoved.Load(),
		RemovalsUndecided: f.st.undecided.Load(),
		Reconnects:        f.st.reconnects.Load(),
	}
	if n := f.st.lastEventNanos.Load(); n != 0 {
		t := time.Unix(0, n).UTC()
		s.LastEventTime = &t
	}
	f.st.mu.Lock()
	s.LastError = f.st.lastErr
	f.st.mu.Unlock()
	return s
}

// setError records msg as the last error (shown until the next one).
func (f *Firehose) setError(msg string) {
	if len(msg) > 1000 {
		msg = msg[:1000] + "…"
	}
	f.st.mu.Lock()
	f.st.lastErr = msg
	f.st.mu.Unlock()
}
