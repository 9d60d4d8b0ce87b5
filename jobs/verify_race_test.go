package jobs

import (
	"context"
	"sync"
	"testing"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

// once runs fn on the PDS's first answer about did, after the answer is decided and before it
// is sent: the stream overtaking the check. fn's error is returned by wait.
func once(b *verifyBundle, did string, fn func() error) (wait func(t *testing.T)) {
	var (
		mu   sync.Mutex
		done bool
		err  error
	)
	b.net.SetAnswered(func(asked string) {
		mu.Lock()
		defer mu.Unlock()
		if asked == did && !done {
			done, err = true, fn()
		}
	})
	return func(t *testing.T) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		require.True(t, done, "the PDS was asked")
		require.NoError(t, err)
	}
}

// The PDS says the account has no like left; before the check writes that, the account likes
// something and the stream applies it (the pair was still there: nothing written). Removing
// now would lose a pair the account has until it likes again (that event has been applied),
// so the check asks again and keeps it.
func TestVerifyCollectionAsksAgainWhenACreateOvertakesTheAnswer(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post, like)
	b.net.AddAccount(alice, post) // the like the check is about is gone
	wait := once(b, alice, func() error {
		b.net.SetRecords(alice, like, 1) // a new like, on the PDS and then on the stream
		_, err := b.index.AddStream(alice, []string{like})
		return err
	})

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, like))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))
	wait(t)

	require.Equal(t, []string{like, post}, b.collectionsOf(t, alice))
	require.False(t, b.removed(t, like, alice), "no tombstone")
	require.EqualValues(t, 1, b.index.Count(like))
	require.Equal(t, 2, b.net.Requests(alice), "asked again")
	m := b.backfill.Metrics
	require.Equal(t, 1.0, metrics.Value(m.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "changed")))
	require.Equal(t, 1.0, metrics.Value(m.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "kept")))
	require.Equal(t, 0.0, metrics.Value(m.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "removed")))
	require.Equal(t, 0.0, metrics.Value(m.VerifyJobs.WithLabelValues(VerifyCollectionKind, "failed")), "asking again is not a failure")
}

// describeRepo lists a like the index lacks; before the check adds it, the account deletes
// its last like and the stream removes the pair. Adding it now would undo that removal, so
// the check asks again and finds no like.
func TestVerifyRepoAsksAgainWhenARemovalOvertakesTheAnswer(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post)
	b.net.AddAccount(alice, post, like)
	wait := once(b, alice, func() error {
		b.net.SetRecords(alice, like, 0)
		_, err := b.index.RemovePairs([]rocksindex.Pair{{Collection: like, DID: alice}}) // decided from the proof
		return err
	})

	require.NoError(t, b.backfill.EnqueueVerifyRepo(context.Background(), alice))
	b.waitJobs(t, VerifyRepoKind, "the check completes", allIn(rivertype.JobStateCompleted))
	wait(t)

	require.Equal(t, []string{post}, b.collectionsOf(t, alice))
	require.True(t, b.removed(t, like, alice), "the stream's tombstone stands")
	require.EqualValues(t, 0, b.index.Count(like))
	require.Equal(t, 2, b.net.Requests(alice), "asked again")
	require.Equal(t, 1.0, metrics.Value(b.backfill.Metrics.VerifyOutcomes.WithLabelValues(VerifyRepoKind, "changed")))
}

// The PDS says the account is deactivated; before the check hides it, the relay's #account
// active=true arrives. The account stays listed.
func TestVerifyAccountStateAsksAgainWhenReactivationOvertakesTheAnswer(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post)
	b.net.AddAccount(alice, post)
	b.net.SetFault(alice, fakepds.RepoDeactivated)
	wait := once(b, alice, func() error {
		b.net.SetFault(alice, fakepds.NoFault)
		return b.index.SetAccountStatus(alice, "") // the stream's #account active=true
	})

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, post))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))
	wait(t)

	require.Empty(t, b.status(t, alice), "still active")
	require.Equal(t, []string{post}, b.collectionsOf(t, alice))
	require.EqualValues(t, 1, b.index.Count(post))
	require.Equal(t, 2, b.net.Requests(alice), "asked again")
}

// An account that keeps writing to another collection (a bot posting all the time) does not
// hold up a check of this one: the guard is per pair, and the check settles at the first
// answer.
func TestVerifyCollectionIsNotHeldUpByWritesToOtherCollections(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post, like)
	b.net.AddAccount(alice, post)
	wait := once(b, alice, func() error {
		_, err := b.index.AddStream(alice, []string{post, block}) // a post and a block, no like
		return err
	})

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, like))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))
	wait(t)

	require.Equal(t, []string{post, block}, b.collectionsOf(t, alice)) // sorted: app.bsky.feed… < app.bsky.graph…
	require.True(t, b.removed(t, like, alice))
	require.Equal(t, 1, b.net.Requests(alice), "asked once")
	require.Equal(t, 0.0, metrics.Value(b.backfill.Metrics.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "changed")))
}

// The PDS answers RepoNotFound (a deletion is final); before the check deletes the account, a
// commit of it reaches the stream: the account is alive, so the check asks again, and the
// account and its pairs stay.
func TestVerifyAccountDeletionAsksAgainWhenACommitOvertakesTheAnswer(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post, like)
	b.net.AddAccount(alice, post)
	b.net.SetFault(alice, fakepds.RepoNotFound)
	wait := once(b, alice, func() error {
		b.net.SetFault(alice, fakepds.NoFault) // it was there after all
		_, err := b.index.AddStream(alice, []string{post})
		return err
	})

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, like))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))
	wait(t)

	require.Empty(t, b.status(t, alice), "not deleted")
	require.Equal(t, []string{post}, b.collectionsOf(t, alice), "the like, gone at the PDS, removed; the post kept")
	require.Equal(t, 2, b.net.Requests(alice), "asked again")
	require.Equal(t, 0.0, metrics.Value(b.backfill.Metrics.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "account_deleted")))
}
