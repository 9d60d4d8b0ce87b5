package firehose

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/rocksindex"
)

// TestCrashChild is the follower process TestSIGKILLLosesNothing kills; it runs only as that
// test's child.
func TestCrashChild(t *testing.T) {
	if os.Getenv("FIREHOSE_CRASH_DB") == "" {
		t.Skip("runs as the child of TestSIGKILLLosesNothing")
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("FIREHOSE_CRASH_DB"))
	require.NoError(t, err)
	ix, err := rocksindex.Open(os.Getenv("FIREHOSE_CRASH_INDEX"))
	require.NoError(t, err)
	f, err := New(Config{
		URL: os.Getenv("FIREHOSE_CRASH_RELAY"), Pool: pool, Index: ix,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, nil)),
		FlushInterval: 20 * time.Millisecond, MinBackoff: 5 * time.Millisecond, LockRetry: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, f.Run(ctx)) // until SIGKILL
}

// logged is one event the crash test appended, to check against the cursor after a kill.
type logged struct {
	seq       int64
	did, coll string // coll "" for an account deletion
	// present is whether, right after this event, the account has a record of coll.
	present bool
}

// SIGKILL at any moment loses no event's effect: after each kill, for every pair whose last
// event is at or below the durable cursor, the index as reopened agrees with that event (a
// create present, the delete of the last record absent, a deleted account gone), and the
// follower that restarts from that cursor ends with exactly the truth.
func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns and kills follower processes")
	}
	t.Parallel()
	relay := fakerelay.New(t)
	dbURL := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b := &testBundle{relay: relay, pool: pool, dir: t.TempDir(), truth: newTruth()}
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), pool, cursorParams(b.relayKey(), 0)))

	rng := rand.New(rand.NewPCG(7, 7))
	accts := make([]*fakerelay.Account, 40)
	for i := range accts {
		accts[i] = newAccount(t, i)
	}
	deleted := map[string]bool{}
	var log []logged
	appendBatch := func(n int) {
		for i := range n {
			a := accts[rng.IntN(len(accts))]
			if i%97 == 96 && !deleted[a.DID] {
				deleted[a.DID] = true
				log = append(log, logged{seq: b.account(t, a.DID, false, "deleted"), did: a.DID})
				continue
			}
			// One op in four deletes one of the account's records (often its last of the
			// collection), the rest create.
			if owned := b.truth.records[a.DID]; len(owned) > 0 && rng.IntN(4) == 0 && !deleted[a.DID] {
				colls := b.truth.collectionsOf(a.DID)
				coll := colls[rng.IntN(len(colls))]
				rkeys := slices.Sorted(maps.Keys(owned[coll]))
				seq := b.commit(t, a, fakerelay.Delete(coll, rkeys[rng.IntN(len(rkeys))]))
				log = append(log, logged{seq: seq, did: a.DID, coll: coll, present: len(b.truth.records[a.DID][coll]) > 0})
				continue
			}
			coll := fmt.Sprintf("com.example.crash.c%d", rng.IntN(8))
			seq := b.commit(t, a, fakerelay.Create(coll, fmt.Sprintf("3k%08d", len(log))))
			log = append(log, logged{seq: seq, did: a.DID, coll: coll, present: !deleted[a.DID]})
		}
	}

	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FIREHOSE_CRASH_DB="+dbURL, "FIREHOSE_CRASH_INDEX="+b.dir,
			"FIREHOSE_CRASH_RELAY="+relay.URL())
		out, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
		require.NoError(t, err)
		t.Cleanup(func() { out.Close() })
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		return cmd
	}

	prev := int64(0)
	for round := range 6 {
		appendBatch(3000) // waiting at the relay: the child streams it as fast as it can
		conns := len(relay.Cursors())
		cmd := child()
		await.Until(t, 30*time.Second, "the child to connect", func() (bool, any) {
			n := len(relay.Cursors())
			return n > conns, fmt.Sprintf("%d connections", n)
		})
		// Kill at a random moment: mid-apply, mid-flush or after catching up.
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()

		cursor := b.durableCursor(t)
		require.GreaterOrEqual(t, cursor, prev, "the cursor never moves back")
		prev = cursor
		ix, err := rocksindex.Open(b.dir)
		require.NoError(t, err)
		// The last event at or below the cursor of every pair and every account deletion.
		lastOf := map[[2]string]logged{}
		for _, e := range log {
			if e.seq > cursor {
				break
			}
			lastOf[[2]string{e.did, e.coll}] = e
		}
		for key, e := range lastOf {
			st, err := ix.AccountStatus(e.did)
			require.NoError(t, err)
			colls, err := ix.CollectionsOf(e.did)
			require.NoError(t, err)
			// An event on the same pair after the cursor may already be applied: no claim then.
			later := false
			for _, l := range log {
				later = later || (l.seq > cursor && l.did == e.did && l.coll == e.coll)
			}
			switch {
			case e.coll == "":
				require.Equal(t, rocksindex.StatusDeleted, st, "round %d: deletion at seq %d", round, e.seq)
				require.Empty(t, colls, "round %d: deletion at seq %d", round, e.seq)
			case st == rocksindex.StatusDeleted, later:
				// Deleted later (after the cursor, or before this event): nothing to claim.
			case e.present:
				require.Contains(t, colls, e.coll, "round %d: %v at seq %d (cursor %d)", round, key, e.seq, cursor)
			default:
				require.NotContains(t, colls, e.coll, "round %d: last record of %v deleted at seq %d (cursor %d)", round, key, e.seq, cursor)
			}
		}
		ix.Close()
		t.Logf("round %d: killed with cursor %d of %d", round, cursor, relay.LastSeq())
	}
	require.Positive(t, prev, "the follower made progress between kills")

	// The last follower catches up from the cursor and ends with exactly the truth.
	ix, err := rocksindex.Open(b.dir)
	require.NoError(t, err)
	defer ix.Close()
	cfg := b.config(ix)
	r := start(t, cfg)
	b.waitDurable(t, relay.LastSeq())
	r.stop(t)
	b.requireIndexMatches(t, ix)
}
