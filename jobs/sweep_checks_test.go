package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// A sweep whose check River gives up on (its PDS fails every attempt) finishes, and says so:
// checks_given_up counts it, beside the checks that ran. The account keeps what the index had,
// compared as sets: an error never removes anything.
func TestASweepCountsTheChecksGivenUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{verifyMaxAttempts: 1})
	const post, like = "app.bsky.feed.post", "app.bsky.feed.like"
	d := testrelay.DIDs("givenup", 2)
	alice, bob := d[0], d[1]
	_, err := b.index.AddPairs([]rocksindex.Pair{{Collection: post, DID: alice}, {Collection: like, DID: alice},
		{Collection: post, DID: bob}, {Collection: like, DID: bob}})
	require.NoError(t, err)
	time.Sleep(2 * time.Millisecond)
	floor := time.Now()
	time.Sleep(2 * time.Millisecond)
	// Both deleted their last like after the floor, in commits the stream never applied.
	for _, did := range d {
		a := b.account(t, did, fakerelay.Create(post, "1"), fakerelay.Create(like, "1"))
		_, err := b.stream.Commit(a, fakerelay.Delete(like, "1"))
		require.NoError(t, err)
		b.net.AddAccount(did, post)
	}
	b.net.SetFault(bob, fakepds.ServerError)

	sw, err := b.backfill.StartSweep(ctx, b.stream.URL(), &floor)
	require.NoError(t, err)
	got := b.waitSweepFinished(t, sw.ID)
	require.Equal(t, int64(2), got.ChecksQueued)
	require.Equal(t, int64(1), got.ChecksGivenUp, "bob's PDS failed his only attempt")
	b.requireListed(t, map[string][]string{post: {alice, bob}, like: {bob}})
}
