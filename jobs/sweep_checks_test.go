package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// A sweep whose checks River gives up on finishes, and says so: checks_given_up counts the
// accounts whose check was discarded (its PDS failed every attempt) or cancelled by an
// operator, not the one that ran. Their accounts keep what the index had, compared as sets:
// an error never removes anything.
func TestASweepCountsTheChecksGivenUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{verifyMaxAttempts: 1})
	const post, like = "app.bsky.feed.post", "app.bsky.feed.like"
	d := testrelay.DIDs("givenup", 3)
	alice, bob, carol := d[0], d[1], d[2]
	var pairs []rocksindex.Pair
	for _, did := range d {
		pairs = append(pairs, rocksindex.Pair{Collection: post, DID: did}, rocksindex.Pair{Collection: like, DID: did})
	}
	_, err := b.index.AddPairs(pairs)
	require.NoError(t, err)
	time.Sleep(2 * time.Millisecond)
	floor := time.Now()
	time.Sleep(2 * time.Millisecond)
	// Each deleted their last like after the floor, in commits the stream never applied.
	for _, did := range d {
		a := b.account(t, did, fakerelay.Create(post, "1"), fakerelay.Create(like, "1"))
		_, err := b.stream.Commit(a, fakerelay.Delete(like, "1"))
		require.NoError(t, err)
		b.net.AddAccount(did, post)
	}
	b.net.SetFault(bob, fakepds.ServerError)
	b.net.Hold()

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), &floor)
	require.NoError(t, err)
	var carols int64
	await.Until(t, 30*time.Second, "carol's check", func() (bool, any) {
		res, err := b.backfill.River.JobList(ctx, river.NewJobListParams().Kinds(VerifyRepoKind))
		require.NoError(t, err)
		for _, j := range res.Jobs {
			var args VerifyRepoArgs
			require.NoError(t, json.Unmarshal(j.EncodedArgs, &args))
			if args.DID == carol && j.State == rivertype.JobStateRunning {
				carols = j.ID
				return true, nil
			}
		}
		return false, len(res.Jobs)
	})
	_, err = b.backfill.River.JobCancel(ctx, carols) // as River UI's cancel does
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "carol's check cancelled", func() (bool, any) {
		j, err := b.backfill.River.JobGet(ctx, carols)
		require.NoError(t, err)
		return j.State == rivertype.JobStateCancelled, j.State
	})
	b.net.Release()

	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(3), got.ChecksQueued)
	require.Equal(t, int64(2), got.ChecksGivenUp, "bob's PDS failed his only attempt; carol's check was cancelled")
	b.requireListed(t, map[string][]string{post: {alice, bob, carol}, like: {bob, carol}})
}
