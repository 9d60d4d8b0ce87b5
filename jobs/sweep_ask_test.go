package jobs

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// deletedAccountsPosting puts n accounts in the index, a post each, that the relay holds
// deleted: every one is asked about, and removed, by a sweep.
func (b *bundle) deletedAccountsPosting(t *testing.T, prefix string, n int) []string {
	t.Helper()
	d := testrelay.DIDs(prefix, n)
	pairs := make([]rocksindex.Pair, len(d))
	for i, did := range d {
		pairs[i] = rocksindex.Pair{Collection: post, DID: did}
	}
	b.deletedAtRelay(t, d...)
	_, err := b.index.AddPairs(pairs)
	require.NoError(t, err)
	return d
}

// The walk of the index's accounts asks the relay about several at once; one question that
// fails fails its whole step, which saves nothing (no count, no cursor) and is asked again:
// the sweep then ends with every account settled and counted once.
func TestSweepStepWithAFailedQuestionIsAskedAgainWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	d := b.deletedAccountsPosting(t, "askfail", 20)
	b.stream.FailRepoStatus(1)

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(len(d)), got.UnlistedAsked, "the failed step is not counted")
	require.Equal(t, int64(len(d)), got.AccountsRemoved)
	require.Empty(t, got.LastError, "the step asked again succeeded")
	b.requireListed(t, map[string][]string{post: nil})
	job, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind))
	require.NoError(t, err)
	require.Len(t, job.Jobs, 1)
	require.NotEmpty(t, job.Jobs[0].Errors, "the failed question was a failed attempt")
	require.Contains(t, job.Jobs[0].Errors[0].Error, "getRepoStatus")
}

// A relay that answers 429 makes the sweep wait as it asks (Retry-After), through the
// sources' client and its rate caps: a snooze, not a failure, and the sweep then finishes
// with every account settled.
func TestSweepWaitsOutTheRelaysRateLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	d := b.deletedAccountsPosting(t, "limited", 5)
	b.stream.RateLimitRepoStatus(1)

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(len(d)), got.AccountsRemoved)
	job, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind))
	require.NoError(t, err)
	require.Len(t, job.Jobs, 1)
	require.Empty(t, job.Jobs[0].Errors, "waited, not failed")
	b.requireListed(t, map[string][]string{post: nil})
}

// At a rate cap so low that questions outwait the cap's queue, each question waits its turn
// again where it stands: the step is not thrown away and asked again for every short wait
// (it would never end), and the sweep finishes without a failure.
func TestSweepQuestionsWaitTheirTurnAtALowCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{sourceRPS: 1})
	b.deletedAccountsPosting(t, "lowcap", sweepAskers)

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(sweepAskers), got.AccountsRemoved)
	job, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(AccountSweepKind))
	require.NoError(t, err)
	require.Len(t, job.Jobs, 1)
	require.Empty(t, job.Jobs[0].Errors, "waited, not failed")
	b.requireListed(t, map[string][]string{post: nil})
}

// A relay whose firehose URL has a path answers its XRPC methods under it: the sweep asks
// there (the sources' client takes only a bare host as a source, a relay keeps its path).
func TestSweepAsksARelayUnderItsPath(t *testing.T) {
	t.Parallel()
	const did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/relay/xrpc/com.atproto.sync.getRepoStatus" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"did":"` + did + `","active":false,"status":"deleted"}`))
	}))
	t.Cleanup(srv.Close)
	base, err := relayHTTPBase("ws" + strings.TrimPrefix(srv.URL, "http") + "/relay")
	require.NoError(t, err)
	got, err := fetchRepoStatus(context.Background(), source.NewClient(0), base, did)
	require.NoError(t, err)
	require.Equal(t, did, got.Did)
	require.Equal(t, rocksindex.StatusDeleted, relayStatus(&got.Active, got.Status))
}

// A sweep after the backfill asks only about the accounts the index lists: one it hides was
// hidden by the stream or a sweep, which an operator's sweep still asks about.
func TestASweepAfterTheBackfillAsksOnlyAboutListedAccounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{})
	d := b.deletedAccountsPosting(t, "hidden", 2)
	hidden, listed := d[0], d[1]
	require.NoError(t, b.index.SetAccountStatus(hidden, "takendown"))

	var sw Sweep
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		sw, err = b.backfill.startSweepTx(ctx, tx, b.stream.URL(), nil, nil, SweepReasonBackfill)
		return err
	}))
	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(1), got.UnlistedAsked, "the listed account only")
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, listed))
	require.Equal(t, "takendown", b.status(t, hidden), "not asked about")

	op, err := b.backfill.StartSweep(ctx, b.stream.URL(), nil)
	require.NoError(t, err)
	got = b.waitSweepFinished(t, op.ID)
	require.Equal(t, int64(1), got.UnlistedAsked, "the hidden account: the deleted one has left the index")
	require.Equal(t, rocksindex.StatusDeleted, b.status(t, hidden))
}
