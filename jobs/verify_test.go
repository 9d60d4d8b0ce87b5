package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

const (
	alice = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	bob   = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
	post  = "app.bsky.feed.post"
	like  = "app.bsky.feed.like"
	block = "app.bsky.graph.block"
)

type verifyBundle struct {
	index    *rocksindex.Index
	net      *fakepds.Server
	backfill *Backfill
}

type verifyOpts struct {
	noStart      bool          // build the job system without working jobs
	strict       bool          // keep the refusal of private addresses (off in other tests)
	pdsTimeout   time.Duration // Config.PDSTimeout
	webTransport bool          // route did:web hosts to the stand-in
}

func setupVerify(t *testing.T, opts verifyOpts) *verifyBundle {
	t.Helper()
	pool := pgtest.NewPool(t)
	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(index.Close)
	require.NoError(t, BindIndex(context.Background(), pool, index, "test"))
	fake := fakepds.New()
	t.Cleanup(fake.Close)
	cfg := Config{
		Pool: pool, Index: index,
		Logger:             slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		PLCURL:             fake.PLC.URL,
		PDSTimeout:         opts.pdsTimeout,
		VerifyAllowPrivate: !opts.strict,
	}
	if opts.webTransport {
		cfg.verifyTransport = fake.WebTransport
	}
	backfill, err := New(cfg)
	require.NoError(t, err)
	if !opts.noStart {
		require.NoError(t, backfill.StartWorkers(context.Background()))
		t.Cleanup(func() {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // no grace: a test may leave a check held
			backfill.StopWorkers(ctx, 10*time.Second)
		})
	}
	return &verifyBundle{index: index, net: fake, backfill: backfill}
}

// add puts pairs in the index, as the backfill or the stream would have.
func (b *verifyBundle) add(t *testing.T, did string, colls ...string) {
	t.Helper()
	_, err := b.index.AddStream(did, colls)
	require.NoError(t, err)
}

func (b *verifyBundle) collectionsOf(t *testing.T, did string) []string {
	t.Helper()
	colls, err := b.index.CollectionsOf(did)
	require.NoError(t, err)
	slices.Sort(colls)
	return colls
}

func (b *verifyBundle) removed(t *testing.T, coll, did string) bool {
	t.Helper()
	gone, err := b.index.Removed(coll, did)
	require.NoError(t, err)
	return gone
}

func (b *verifyBundle) status(t *testing.T, did string) string {
	t.Helper()
	st, err := b.index.AccountStatus(did)
	require.NoError(t, err)
	return st
}

// jobs lists the verify jobs of kind, oldest first.
func (b *verifyBundle) jobs(t *testing.T, kind string) []*rivertype.JobRow {
	t.Helper()
	res, err := b.backfill.River.JobList(context.Background(), river.NewJobListParams().Kinds(kind))
	require.NoError(t, err)
	return res.Jobs
}

// waitJobs waits until the jobs of kind satisfy ok.
func (b *verifyBundle) waitJobs(t *testing.T, kind, what string, ok func([]*rivertype.JobRow) bool) []*rivertype.JobRow {
	t.Helper()
	var rows []*rivertype.JobRow
	await.Until(t, 30*time.Second, what, func() (bool, any) {
		rows = b.jobs(t, kind)
		seen := make([]string, len(rows))
		for i, r := range rows {
			seen[i] = fmt.Sprintf("job %d: %s attempt %d errors %v", r.ID, r.State, r.Attempt, r.Errors)
		}
		return ok(rows), seen
	})
	return rows
}

func allIn(state rivertype.JobState) func([]*rivertype.JobRow) bool {
	return func(rows []*rivertype.JobRow) bool {
		return len(rows) > 0 && !slices.ContainsFunc(rows, func(r *rivertype.JobRow) bool { return r.State != state })
	}
}

// A PDS whose listRecords is empty proves the account has no record of the collection
// left: the pair leaves the index with a tombstone; the account's other pairs stay.
func TestVerifyCollectionEmptyRemovesThePairWithATombstone(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post, like)
	b.net.AddAccount(alice, post) // no like left

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, like))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))

	require.Equal(t, []string{post}, b.collectionsOf(t, alice))
	require.True(t, b.removed(t, like, alice), "a tombstone keeps the backfill from putting it back")
	require.False(t, b.removed(t, post, alice))
	// The job system's own metrics: exactly this check's removal and outcome, one PDS answer.
	m := b.backfill.Metrics
	require.Equal(t, 1.0, metrics.Value(m.FirehoseRemovals.WithLabelValues("pds_check")))
	require.Equal(t, 1.0, metrics.Value(m.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "removed")))
	require.Equal(t, 1.0, metrics.Value(m.VerifyPDSResponses.WithLabelValues("200")))
}

// Any record left keeps the pair, and the PDS was really asked.
func TestVerifyCollectionWithRecordsKeepsThePair(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post)
	b.net.SetRecords(alice, post, 3)

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, post))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))

	require.Equal(t, []string{post}, b.collectionsOf(t, alice))
	require.False(t, b.removed(t, post, alice))
	require.Equal(t, 1, b.net.Requests(alice))
}

// No answer is no evidence: a 500, a 200 that is not a listRecords answer, a PDS slower
// than the request timeout, a DID the directory does not know. Each fails the attempt,
// removes nothing, and River retries; once the PDS answers, the check settles it.
func TestVerifyFailuresRemoveNothingAndAreRetried(t *testing.T) {
	t.Parallel()
	for name, breakIt := range map[string]func(*fakepds.Server){
		"500":       func(n *fakepds.Server) { n.SetFault(alice, fakepds.ServerError) },
		"malformed": func(n *fakepds.Server) { n.SetFault(alice, fakepds.Malformed) },
		"slow":      func(n *fakepds.Server) { n.SetDelay(time.Minute) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setupVerify(t, verifyOpts{pdsTimeout: 300 * time.Millisecond})
			b.add(t, alice, post)
			b.net.AddAccount(alice) // no post left: only a failure keeps the pair
			breakIt(b.net)

			require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, post))
			rows := b.waitJobs(t, VerifyCollectionKind, "the first attempt fails", allIn(rivertype.JobStateRetryable))
			require.NotEmpty(t, rows[0].Errors)
			require.Equal(t, []string{post}, b.collectionsOf(t, alice), "a failure removes nothing")
			require.False(t, b.removed(t, post, alice))

			b.net.SetFault(alice, fakepds.NoFault)
			b.net.SetDelay(0)
			rows = b.waitJobs(t, VerifyCollectionKind, "a retry completes", allIn(rivertype.JobStateCompleted))
			require.GreaterOrEqual(t, rows[0].Attempt, 2)
			require.Empty(t, b.collectionsOf(t, alice))
		})
	}
	t.Run("unknown DID", func(t *testing.T) {
		t.Parallel()
		b := setupVerify(t, verifyOpts{})
		b.add(t, bob, post) // the PLC directory has no bob
		require.NoError(t, b.backfill.EnqueueVerifyRepo(context.Background(), bob))
		rows := b.waitJobs(t, VerifyRepoKind, "resolution fails", allIn(rivertype.JobStateRetryable))
		require.Contains(t, rows[0].Errors[0].Error, "resolve")
		require.Equal(t, []string{post}, b.collectionsOf(t, bob))
		require.Empty(t, b.status(t, bob))
	})
}

// RepoNotFound from the account's own PDS is a deleted account: every pair goes and the
// deletion is final. Deactivated, taken down or suspended only hide it: pairs kept.
func TestVerifyAccountStates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fault  fakepds.Fault
		status string
		kept   []string
	}{
		{fakepds.RepoNotFound, rocksindex.StatusDeleted, nil},
		{fakepds.RepoTakendown, "takendown", []string{like, post}},
		{fakepds.RepoDeactivated, "deactivated", []string{like, post}},
		{fakepds.RepoSuspended, "suspended", []string{like, post}},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			b := setupVerify(t, verifyOpts{})
			b.add(t, alice, post, like)
			b.net.AddAccount(alice, post)
			b.net.SetFault(alice, tc.fault)

			require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, like))
			b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))

			require.Equal(t, tc.status, b.status(t, alice))
			require.Equal(t, tc.kept, b.collectionsOf(t, alice))
			listed, err := b.index.ListRepos(post, "", 10)
			require.NoError(t, err)
			require.Empty(t, listed, "an inactive account is not listed")
		})
	}
}

// An account already deleted in the index is not asked about: nothing is left to check,
// and nothing may come back.
func TestVerifySkipsDeletedAccounts(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post)
	_, _, err := b.index.RemoveAccount(alice)
	require.NoError(t, err)
	b.net.AddAccount(alice, post, like)

	require.NoError(t, b.backfill.EnqueueVerifyRepo(context.Background(), alice))
	b.waitJobs(t, VerifyRepoKind, "the check completes", allIn(rivertype.JobStateCompleted))
	require.Zero(t, b.net.Requests(alice))
	require.Empty(t, b.collectionsOf(t, alice))
}
