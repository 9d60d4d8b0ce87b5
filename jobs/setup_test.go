package jobs

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// bundle is a running backfill on a fresh database, a temp index and a stand-in relay.
type bundle struct {
	pool     *pgxpool.Pool
	index    *rocksindex.Index
	relay    *testrelay.Relay
	backfill *Backfill
	src      source.Source
	// stream is the relay whose stream has the gaps: its account list is what a gap's sweep
	// walks; net is the PLC directory and PDS its checks ask.
	stream *fakerelay.Relay
	net    *fakepds.Server
}

type setupOpts struct {
	pageLimit    int
	pagePause    time.Duration
	beforeCommit func(ctx context.Context, collection string) error
	lexiconList  bool // serve discovery's list from the relay's /llms.txt
	maxAttempts  int
	// verifyMaxAttempts is Config.VerifyMaxAttempts (0: its default).
	verifyMaxAttempts int
	// beforeResetFinish is ResetWorker.beforeFinish.
	beforeResetFinish func(ctx context.Context, collection string) error
	// cancelWait bounds how long Cancel waits for cancelled jobs (a page timeout when 0).
	cancelWait time.Duration
	// concurrency is how many page jobs run at once (4 when 0).
	concurrency int
	// beforeFetch is Config.BeforeFetch.
	beforeFetch func(ctx context.Context) error
	// beforeIndexWrite is Config.beforeIndexWrite.
	beforeIndexWrite func(collection string)
	// noStart builds the job system without working jobs: what is enqueued stays as inserted.
	noStart bool
	// gapRepair makes the relay the source of stream gaps' refreshes (Config.GapRepairSource).
	gapRepair bool
	// sweepAfterBackfill sweeps the stream's relay once the pages are done
	// (Config.SweepAfterBackfill).
	sweepAfterBackfill bool
	// sourceRPS caps the requests a second to each host, pages and sweeps alike (0: none).
	sourceRPS float64
}

func setup(t testing.TB, opts setupOpts) *bundle {
	t.Helper()
	if opts.pageLimit == 0 {
		opts.pageLimit = 7
	}
	pool := pgtest.NewPool(t)
	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, BindIndex(context.Background(), pool, index, "test"))
	relay := testrelay.New()
	t.Cleanup(relay.Close)

	stream := fakerelay.New(t)
	net := fakepds.New()
	t.Cleanup(net.Close)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := source.Parse(relay.URL)
	require.NoError(t, err)
	cfg := Config{
		Pool: pool, Index: index, Logger: logger,
		PageLimit: opts.pageLimit, PagePause: opts.pagePause, Concurrency: cmp.Or(opts.concurrency, 4),
		PageMaxAttempts:    opts.maxAttempts,
		VerifyMaxAttempts:  opts.verifyMaxAttempts,
		beforeCommit:       opts.beforeCommit,
		beforeResetFinish:  opts.beforeResetFinish,
		BeforeFetch:        opts.beforeFetch,
		beforeIndexWrite:   opts.beforeIndexWrite,
		PLCURL:             net.PLC.URL,
		VerifyAllowPrivate: true,
	}
	if opts.lexiconList {
		cfg.LexiconListURL = relay.URL + "/llms.txt"
	}
	if opts.gapRepair {
		cfg.GapRepairSource = &src
	}
	if opts.sweepAfterBackfill {
		cfg.SweepAfterBackfill = stream.URL()
	}
	if opts.sourceRPS > 0 {
		cfg.Metrics = metrics.New()
		cfg.Source = source.NewClient(opts.sourceRPS, source.WithMetrics(cfg.Metrics))
	}
	backfill, err := New(cfg)
	require.NoError(t, err)
	backfill.cancelWait = opts.cancelWait
	backfill.gapRepairWait = time.Second
	backfill.sweepSlice = 2 * time.Second
	backfill.sweepAfterBackfillWait = 200 * time.Millisecond
	// Cleanups run last-in first-out: stop River before the index closes.
	t.Cleanup(index.Close)
	if opts.noStart {
		return &bundle{pool: pool, index: index, relay: relay, src: src, backfill: backfill, stream: stream, net: net}
	}
	require.NoError(t, backfill.StartWorkers(context.Background()))
	t.Cleanup(func() {
		// No grace: cancel what runs at once (a test may leave a job blocked on purpose).
		stopCtx, stopCancel := context.WithCancel(context.Background())
		stopCancel()
		backfill.StopWorkers(stopCtx, 10*time.Second)
	})
	return &bundle{pool: pool, index: index, relay: relay, src: src, backfill: backfill, stream: stream, net: net}
}

// waitDone waits until no backfill job is live and returns the final status.
func (b *bundle) waitDone(t *testing.T, timeout time.Duration) Status {
	t.Helper()
	var st Status
	await.Until(t, timeout, "the backfill to end", func() (bool, any) {
		var err error
		st, err = b.backfill.Status(context.Background())
		require.NoError(t, err)
		return !st.Running, st
	})
	return st
}

// waitJobState waits until job id is in state and returns its row.
func (b *bundle) waitJobState(t *testing.T, id int64, state rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var job *rivertype.JobRow
	await.Until(t, 30*time.Second, fmt.Sprintf("job %d to be %s", id, state), func() (bool, any) {
		var err error
		job, err = b.backfill.River.JobGet(context.Background(), id)
		require.NoError(t, err)
		return job.State == state, fmt.Sprintf("%s, attempt %d, errors %v", job.State, job.Attempt, job.Errors)
	})
	return job
}

// requireIndexed asserts the index holds exactly the relay's DIDs for collection.
func (b *bundle) requireIndexed(t *testing.T, collection string, want []string) {
	t.Helper()
	got, err := b.index.ListRepos(collection, "", len(want)+10)
	require.NoError(t, err)
	want = slices.Clone(want)
	slices.Sort(want)
	require.Equal(t, want, got, collection)
}

func statusOf(t *testing.T, st Status, collection string) CollectionStatus {
	t.Helper()
	for _, c := range st.Collections {
		if c.Collection == collection {
			return c
		}
	}
	t.Fatalf("no status for %s", collection)
	return CollectionStatus{}
}

// writeFullPage answers with a full page (7 DIDs, the tests' page size) and the given cursor:
// what a source that lies about its cursor sends.
func writeFullPage(w http.ResponseWriter, cursor string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"repos":[`)
	for i := range 7 {
		if i > 0 {
			fmt.Fprint(w, ",")
		}
		fmt.Fprintf(w, `{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaa%c"}`, 'a'+i)
	}
	fmt.Fprintf(w, `],"cursor":%q}`, cursor)
}
