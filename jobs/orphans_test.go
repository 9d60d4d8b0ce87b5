package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/internal/testrelay"
)

// insertRunningJobOf writes a page job left running by the River client clientID.
func (b *bundle) insertRunningJobOf(t *testing.T, collection, clientID string, metadata string) int64 {
	t.Helper()
	var id int64
	err := b.pool.QueryRow(context.Background(), `
		INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at, attempted_by, priority, metadata)
		VALUES (jsonb_build_object('collection', $1::text), $2, 12, $3, 'running', 1, now() - interval '1 second', ARRAY[$4::text], 1, $5::jsonb)
		RETURNING id`, collection, PageKind, QueuePages, clientID, metadata).Scan(&id)
	require.NoError(t, err)
	return id
}

// A job whose process died (its client lock is free) is rescued at once and its chain goes on;
// a job of a live process (its lock is held) is left alone; a dead job that was cancelled ends
// cancelled. River's rescue query is an internal API: this fails if an upgrade changes it.
func TestRescueOrphansLeavesLiveProcessesAlone(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.dead", testrelay.DIDs("d", 15)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.dead"))
	ctx := context.Background()
	_, err := queries.ProgressInsertMany(ctx, b.pool, progressInsert("com.example.dead", b.src.Name))
	require.NoError(t, err)

	release, err := HoldClientLock(ctx, b.pool, "client-alive")
	require.NoError(t, err)
	defer release()
	dead := b.insertRunningJobOf(t, "com.example.dead", "client-dead", `{}`)
	alive := b.insertRunningJobOf(t, "com.example.alive", "client-alive", `{}`)
	cancelled := b.insertRunningJobOf(t, "com.example.gone", "client-dead-too", `{"cancel_attempted_at":"2026-01-01T00:00:00Z"}`)

	n, err := RescueOrphans(ctx, b.pool, b.backfill.River)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	job, err := b.backfill.River.JobGet(ctx, alive)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateRunning, job.State, "a live process keeps its job")
	job, err = b.backfill.River.JobGet(ctx, cancelled)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCancelled, job.State)

	// The dead process's chain is worked again by this one, to the end.
	await.Until(t, 30*time.Second, "the rescued chain to finish", func() (bool, any) {
		st, err := b.backfill.Status(ctx)
		require.NoError(t, err)
		c := statusOf(t, st, "com.example.dead")
		return c.Completed, c
	})
	b.requireIndexed(t, "com.example.dead", b.relay.Collection("com.example.dead"))
	job, err = b.backfill.River.JobGet(ctx, dead)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateCompleted, job.State)

	// Once its lock is gone (the session ends a moment after its connection closes), the
	// other process's job is rescued too.
	release()
	await.Until(t, 10*time.Second, "the job of a process whose lock is gone to be rescued", func() (bool, any) {
		n, err = RescueOrphans(ctx, b.pool, b.backfill.River)
		require.NoError(t, err)
		require.LessOrEqual(t, n, 1)
		return n == 1, fmt.Sprintf("%d rescued", n)
	})
}

func progressInsert(collection, source string) pgstore.ProgressInsertManyParams {
	return pgstore.ProgressInsertManyParams{Collections: []string{collection}, Source: source}
}

// The queue gauge reads River's per-queue counts through its driver executor (an internal
// API): it must see every queue colindex works, with what is available and running.
func TestQueueCountsSeeEveryQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	b.insertRunningJobOf(t, "com.example.q", "client-elsewhere", `{}`)
	counts, err := queueCounts(ctx, b.backfill.River, QueuePages, QueueRuns, QueueMaintenance)
	require.NoError(t, err)
	byQueue := map[string]int64{}
	for _, c := range counts {
		byQueue[c.Queue] = c.CountRunning
	}
	require.Len(t, byQueue, 3, "one row per queue asked, even an empty one: %v", byQueue)
	require.EqualValues(t, 1, byQueue[QueuePages])
}

// The client lock comes back when its session ends while the process lives: another start
// sees the client alive again within a check, and does not rescue its jobs.
func TestClientLockIsTakenAgainAfterItsSessionEnds(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx := context.Background()
	release, err := HoldClientLock(ctx, b.pool, "client-resilient")
	require.NoError(t, err)
	defer release()
	alive, err := clientAlive(ctx, b.pool, "client-resilient")
	require.NoError(t, err)
	require.True(t, alive)

	// The session is cut from outside (as a Postgres restart or a proxy would).
	_, err = b.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = hashtext($1)::oid AND objid = hashtext($2)::oid`,
		clientLockClass, "client-resilient")
	require.NoError(t, err)
	// The session is gone, and the lock with it, well before the holder checks it again.
	await.Until(t, lockCheckEvery, "the session to be cut", func() (bool, any) {
		alive, err = clientAlive(ctx, b.pool, "client-resilient")
		require.NoError(t, err)
		return !alive, fmt.Sprintf("alive=%v", alive)
	})
	await.Until(t, 3*lockCheckEvery, "the lock to be taken again", func() (bool, any) {
		alive, err = clientAlive(ctx, b.pool, "client-resilient")
		require.NoError(t, err)
		return alive, fmt.Sprintf("alive=%v", alive)
	})
}
