package jobs

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/testrelay"
)

// waitingForLocks waits until n transactions of this database wait for an advisory lock.
func (b *bundle) waitingForLocks(t *testing.T, n int) {
	t.Helper()
	await.Until(t, 30*time.Second, "transactions waiting for the lock", func() (bool, any) {
		var waiting int
		require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting))
		return waiting == n, waiting
	})
}

// A start whose request for the watcher is taken for a running one (which has not seen its
// pages) is still waited for: the watcher looks for live pages again under the lock. Here the
// start's chain stops after its first page, so no completed chain would ask again.
func TestTheWatcherWaitsForAStartThatAskedWhileItRan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, setupOpts{lexiconList: true, sweepAfterBackfill: true, maxAttempts: 1})
	d := testrelay.DIDs("asked", 10)
	b.relay.Append(post, d...)
	b.relay.SetLLMsTxt(testrelay.LexiconList(post))
	b.deletedAtRelay(t, d...)
	b.relay.Intercept(func(w http.ResponseWriter, _ *http.Request, n int64) bool {
		if n < 2 {
			return false
		}
		http.Error(w, "down", http.StatusBadGateway)
		return true
	})
	b.watchersDone(t) // the workers' start asked: nothing paged yet

	lock, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, queries.SweepAfterBackfillLock(ctx, lock, sweepAfterLockKey))
	started := make(chan error, 1)
	go func() {
		_, err := b.backfill.Start(ctx, b.src)
		started <- err
	}()
	b.waitingForLocks(t, 1) // the start, its run and chain inserted, asks for the watcher
	// A watcher already at work: it found nothing live (the start has not committed).
	_, err = b.backfill.River.Insert(ctx, SweepAfterBackfillArgs{Relay: b.stream.URL()}, nil)
	require.NoError(t, err)
	b.waitingForLocks(t, 2)
	require.NoError(t, lock.Rollback(ctx))
	require.NoError(t, <-started)

	b.watchersDone(t)
	sweeps := b.sweepsOf(t)
	require.Len(t, sweeps, 1, "the stopped chain's page is swept")
	require.Equal(t, int64(7), b.waitSweepFinished(t, sweeps[0].ID).AccountsRemoved)
	b.requireListed(t, map[string][]string{post: nil})
}
