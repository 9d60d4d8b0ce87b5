package jobs

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/source"
)

var moveNames = []string{"com.example.a", "com.example.b", "com.example.c"}

// moveRun starts a slow run over moveNames (210 DIDs each, 7 per page, 30 ms between pages)
// on the bundle's relay (A), and returns B: a mirror of A, sharing its cursors.
func moveRun(t *testing.T, names ...string) (*bundle, *testrelay.Relay, source.Source) {
	t.Helper()
	b := setup(t, setupOpts{lexiconList: true, pagePause: 30 * time.Millisecond})
	for _, n := range names {
		b.relay.Append(n, testrelay.DIDs(n[len(n)-1:], 210)...)
	}
	b.relay.SetLLMsTxt(testrelay.LexiconList(names...))
	mirror := b.relay.Mirror()
	t.Cleanup(mirror.Close)
	srcB, err := source.Parse(mirror.URL)
	require.NoError(t, err)
	return b, mirror, srcB
}

// requireTruth asserts that every collection ended complete, counted exactly once, and that
// the index holds exactly the relay's DIDs.
func (b *bundle) requireTruth(t *testing.T, st Status, names ...string) {
	t.Helper()
	for _, n := range names {
		c := statusOf(t, st, n)
		require.True(t, c.Completed, n)
		require.EqualValues(t, 210, c.Imported, "%s is counted exactly once", n)
		require.Empty(t, c.Error, n)
		b.requireIndexed(t, n, b.relay.Collection(n))
	}
}

func TestMoveAllKeepingCursorsGoesOnFromTheNewSource(t *testing.T) {
	t.Parallel()
	b, relayB, srcB := moveRun(t, moveNames...)
	ctx := context.Background()
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	before := b.waitImported(t, 42)

	res, err := b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, All: true})
	require.NoError(t, err)
	requestsA := b.relay.Requests()
	require.Equal(t, MoveKeepCursor, res.Cursor)
	require.Len(t, res.Moved, len(moveNames))
	for _, m := range res.Moved {
		require.Equal(t, b.src.Name, m.From)
	}

	st := b.waitDone(t, 60*time.Second)
	b.requireTruth(t, st, moveNames...)
	for _, n := range moveNames {
		require.Equal(t, srcB.Name, statusOf(t, st, n).Source, "status names the source %s pages from", n)
		starts := relayB.Starts(n)
		require.NotEmpty(t, starts, "%s paged from B after the move", n)
		// Kept: B is asked from where A had got to, not from the beginning.
		require.GreaterOrEqual(t, starts[0], int(statusOf(t, before, n).Imported), n)
		require.Positive(t, starts[0], n)
		for i := 1; i < len(starts); i++ {
			require.Equal(t, starts[i-1]+7, starts[i], "%s: each page once, in order: %v", n, starts)
		}
	}
	// At most the page each chain had in flight reached A after the move (and was dropped).
	require.LessOrEqual(t, b.relay.Requests()-requestsA, int64(len(moveNames)))
}

func TestMoveOneCollectionRestartsItFromTheBeginning(t *testing.T) {
	t.Parallel()
	b, relayB, srcB := moveRun(t, moveNames...)
	ctx := context.Background()
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitImported(t, 42)

	res, err := b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, Collections: []string{"com.example.a"}, Restart: true})
	require.NoError(t, err)
	startsA := len(b.relay.Starts("com.example.a"))
	require.Equal(t, MoveRestartCursor, res.Cursor)
	require.Len(t, res.Moved, 1)
	require.Equal(t, "com.example.a", res.Moved[0].Collection)

	st := b.waitDone(t, 60*time.Second)
	b.requireTruth(t, st, moveNames...)
	require.Equal(t, srcB.Name, statusOf(t, st, "com.example.a").Source)
	require.Equal(t, b.src.Name, statusOf(t, st, "com.example.b").Source)
	require.Equal(t, b.src.Name, statusOf(t, st, "com.example.c").Source)
	// Restarted: B served the whole collection from the beginning, page after page.
	starts := relayB.Starts("com.example.a")
	require.NotEmpty(t, starts)
	require.Zero(t, starts[0])
	for i := 1; i < len(starts); i++ {
		require.Equal(t, starts[i-1]+7, starts[i], "each page once, in order: %v", starts)
	}
	require.Empty(t, relayB.Starts("com.example.b"), "collections not moved stay on A")
	require.LessOrEqual(t, len(b.relay.Starts("com.example.a"))-startsA, 1, "at most the page in flight reached A")
}

// A page fetched from the old source before the move and committed after it must not move the
// cursor: the page is dropped and fetched again from the new source, at the same cursor.
func TestPageInFlightDuringAMoveDoesNotMoveTheCursor(t *testing.T) {
	t.Parallel()
	b, relayB, srcB := moveRun(t, "com.example.a")
	ctx := context.Background()
	var armed atomic.Bool
	inFetch, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.relay.Intercept(func(_ http.ResponseWriter, r *http.Request, _ int64) bool {
		if armed.Load() && r.URL.Query().Get("cursor") != "" {
			once.Do(func() {
				close(inFetch)
				<-release // the move commits while this page is in flight
			})
		}
		return false
	})
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitImported(t, 14)
	armed.Store(true)
	waitFor(t, inFetch, "a page in flight from A")
	// Nothing else commits while the chain's only page is held: this is its cursor's offset.
	d, err := b.backfill.Collection(ctx, "com.example.a")
	require.NoError(t, err)
	heldAt := int(d.Imported)

	_, err = b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, All: true})
	require.NoError(t, err)
	close(release)

	st := b.waitDone(t, 60*time.Second)
	b.requireTruth(t, st, "com.example.a")
	starts := relayB.Starts("com.example.a")
	require.NotEmpty(t, starts)
	require.Equal(t, heldAt, starts[0], "B is asked for the page A's dropped page would have been")
	require.Equal(t, heldAt, b.relay.Starts("com.example.a")[len(b.relay.Starts("com.example.a"))-1],
		"A's last page was the one in flight at the move")
}

func TestStartNamingAnotherSourceIsRefusedUntilAMove(t *testing.T) {
	t.Parallel()
	b, relayB, srcB := moveRun(t, moveNames...)
	ctx := context.Background()
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	b.waitImported(t, 21)
	_, err = b.backfill.Cancel(ctx)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)
	requestsA := b.relay.Requests()

	_, err = b.backfill.StartWith(ctx, srcB, StartOptions{SourceNamed: true})
	require.ErrorIs(t, err, ErrSourceMismatch)
	require.Contains(t, err.Error(), "3 of the collections it would page are bound to "+b.src.Name)
	require.Contains(t, err.Error(), "colindex move-source "+srcB.Name)

	res, err := b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, All: true})
	require.NoError(t, err)
	require.Len(t, res.Moved, 3)
	require.Equal(t, 3, res.Waiting, "no run is live: the move starts nothing")
	require.Zero(t, res.Enqueued)
	again, err := b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, All: true})
	require.NoError(t, err)
	require.Empty(t, again.Moved)
	require.Equal(t, 3, again.Unchanged)

	_, err = b.backfill.StartWith(ctx, srcB, StartOptions{SourceNamed: true})
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	b.requireTruth(t, st, moveNames...)
	require.Equal(t, requestsA, b.relay.Requests(), "nothing paged from A after the move")
	require.NotZero(t, relayB.Requests())

	_, err = b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, Collections: []string{"com.example.nope"}})
	require.ErrorIs(t, err, ErrNoSuchCollection)
}

// A collection whose chain stopped on the old source (its retries ran out) pages again from
// the new one when it is moved while the run is live: the move enqueues its chain.
func TestMoveRestartsAStoppedChainWhileTheRunIsLive(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true, pagePause: 30 * time.Millisecond, maxAttempts: 1})
	names := []string{"com.example.a", "com.example.b"}
	b.relay.Append("com.example.a", testrelay.DIDs("a", 21)...)
	b.relay.Append("com.example.b", testrelay.DIDs("b", 1400)...) // 200 pages: keeps the run live
	b.relay.SetLLMsTxt(testrelay.LexiconList(names...))
	relayB := b.relay.Mirror()
	t.Cleanup(relayB.Close)
	srcB, err := source.Parse(relayB.URL)
	require.NoError(t, err)
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		if r.URL.Query().Get("collection") != "com.example.a" {
			return false
		}
		http.Error(w, `{"error":"InternalServerError"}`, http.StatusInternalServerError)
		return true
	})
	ctx := context.Background()
	_, err = b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	// Stopped: its only attempt failed.
	await.Until(t, 30*time.Second, "com.example.a's chain to stop with an error", func() (bool, any) {
		d, err := b.backfill.Collection(ctx, "com.example.a")
		require.NoError(t, err)
		return d.Error != "" && d.Chain == nil, d
	})

	res, err := b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, Collections: []string{"com.example.a"}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Enqueued, "%+v", res)
	require.Zero(t, res.Waiting)
	st := b.waitDone(t, 60*time.Second)
	a := statusOf(t, st, "com.example.a")
	require.True(t, a.Completed)
	require.EqualValues(t, 21, a.Imported)
	require.Equal(t, srcB.Name, a.Source)
	b.requireIndexed(t, "com.example.a", b.relay.Collection("com.example.a"))
	require.Equal(t, []int{0, 7, 14, 21}, relayB.Starts("com.example.a"))
}

// The same with a restart while the first page is in flight: the cursor it was fetched from
// ("") is the one a restart leaves, so only the source generation tells the page is stale.
func TestFirstPageInFlightDuringARestartMoveIsDropped(t *testing.T) {
	t.Parallel()
	b, relayB, srcB := moveRun(t, "com.example.a")
	ctx := context.Background()
	inFetch, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.relay.Intercept(func(_ http.ResponseWriter, _ *http.Request, _ int64) bool {
		once.Do(func() {
			close(inFetch)
			<-release
		})
		return false
	})
	_, err := b.backfill.Start(ctx, b.src)
	require.NoError(t, err)
	waitFor(t, inFetch, "the first page in flight from A")
	res, err := b.backfill.MoveSource(ctx, MoveRequest{Source: srcB, All: true, Restart: true})
	require.NoError(t, err)
	require.Equal(t, 1, res.Continuing)
	close(release)

	st := b.waitDone(t, 60*time.Second)
	b.requireTruth(t, st, "com.example.a")
	require.Equal(t, []int{0}, b.relay.Starts("com.example.a"), "A served only the page in flight")
	starts := relayB.Starts("com.example.a")
	require.NotEmpty(t, starts)
	require.Zero(t, starts[0], "B pages from the beginning: A's page did not move the cursor")
}
