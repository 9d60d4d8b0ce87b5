package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// A job left running by a process that died is only retried by River's rescuer once it is
// older than its timeout, checked every 30 s by the leader: 20–50 s after a restart. colindex
// knows sooner. Every serve holds a Postgres session lock named after its River client ID
// while it runs; a SIGKILL ends the session and frees the lock. A running job whose last
// attempt was made by a client whose lock is free belongs to a dead process, and is made
// available at once. A live process's jobs are never touched: its lock is held.

// clientLockClass namespaces the client locks among Postgres advisory locks.
const clientLockClass = "colindex.river_client"

// HoldClientLock takes the lock that says the River client clientID is alive, on a
// connection of its own, and keeps it: the session is checked every lockCheckEvery, and if it
// ended while the process lives (a Postgres restart, an idle-session timeout, a proxy), the
// lock is taken again on a new one, so another start does not take this process for dead for
// longer than that. release stops the check and frees the lock.
func HoldClientLock(ctx context.Context, pool *pgxpool.Pool, clientID string) (release func(), err error) {
	conn, err := lockClient(ctx, pool, clientID)
	if err != nil {
		return nil, err
	}
	watchCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-watchCtx.Done():
				_ = conn.Close(context.Background())
				return
			case <-time.After(lockCheckEvery):
			}
			pingCtx, cancel := context.WithTimeout(watchCtx, 5*time.Second)
			err := conn.Ping(pingCtx)
			cancel()
			if err == nil || watchCtx.Err() != nil {
				continue
			}
			_ = conn.Close(context.Background())
			for watchCtx.Err() == nil {
				if conn, err = lockClient(watchCtx, pool, clientID); err == nil {
					break
				}
				select {
				case <-watchCtx.Done():
				case <-time.After(time.Second):
				}
			}
			if watchCtx.Err() != nil {
				return
			}
		}
	}()
	return func() { stop(); <-done }, nil
}

// lockCheckEvery is how often the client lock's session is checked.
const lockCheckEvery = 5 * time.Second

// lockClient takes the client lock on a pool connection taken out of the pool for good: the
// pool must never hand this session to anyone else, and closing it is what frees the lock.
func lockClient(ctx context.Context, pool *pgxpool.Pool, clientID string) (*pgx.Conn, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("client lock: %w", err)
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock(hashtext($1), hashtext($2))", clientLockClass, clientID); err != nil {
		c.Release()
		return nil, fmt.Errorf("client lock: %w", err)
	}
	return c.Hijack(), nil
}

// clientAlive reports whether the process of River client clientID still holds its lock.
func clientAlive(ctx context.Context, pool *pgxpool.Pool, clientID string) (bool, error) {
	var alive bool
	err := pool.QueryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND granted
			  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND classid = hashtext($1)::oid AND objid = hashtext($2)::oid AND objsubid = 2
		)`, clientLockClass, clientID).Scan(&alive)
	if err != nil {
		return false, fmt.Errorf("client lock of %s: %w", clientID, err)
	}
	return alive, nil
}

// RescueOrphans makes every running job of a dead process available again (cancelled when a
// cancel was asked for it, discarded when its attempts are spent, as River's rescuer would),
// and returns how many it rescued. Jobs of clients that never held a lock count as dead.
func RescueOrphans(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx]) (int, error) {
	running, err := listAll(ctx, client, river.NewJobListParams().States(rivertype.JobStateRunning))
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	// The horizon is in the database's clock (attempted_at), just past the newest attempt
	// judged here: an attempt a live client makes meanwhile is newer, and is not touched.
	params := riverdriver.JobRescueManyParams{}
	for _, j := range running {
		if len(j.AttemptedBy) == 0 || j.AttemptedAt == nil {
			continue
		}
		alive, err := clientAlive(ctx, pool, j.AttemptedBy[len(j.AttemptedBy)-1])
		if err != nil {
			return 0, err
		}
		if alive {
			continue
		}
		state, finalized := rivertype.JobStateAvailable, (*time.Time)(nil)
		switch {
		case cancelRequested(j.Metadata):
			state, finalized = rivertype.JobStateCancelled, &now
		case j.Attempt >= j.MaxAttempts:
			state, finalized = rivertype.JobStateDiscarded, &now
		}
		errData, _ := json.Marshal(rivertype.AttemptError{
			At: now, Attempt: j.Attempt, Error: "the process running this job died; rescued at restart",
		})
		if h := j.AttemptedAt.Add(time.Microsecond); h.After(params.StuckHorizon) {
			params.StuckHorizon = h
		}
		params.ID = append(params.ID, j.ID)
		params.Error = append(params.Error, errData)
		params.FinalizedAt = append(params.FinalizedAt, finalized)
		params.ScheduledAt = append(params.ScheduledAt, now)
		params.State = append(params.State, string(state))
	}
	if len(params.ID) == 0 {
		return 0, nil
	}
	if err := rescueJobs(ctx, client, &params); err != nil {
		return 0, fmt.Errorf("rescue jobs of dead processes: %w", err)
	}
	return len(params.ID), nil
}
