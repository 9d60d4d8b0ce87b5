package main

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/sdk/goclient"
	"github.com/colindex/colindex/source"
)

// Issue 12: a bare start bound every collection to the default source, and a later start
// naming another one said it would page them while they kept paging the first. Through the
// binary: that start is refused and names the fix, move-source moves them, status names the
// source each collection pages from, and the index ends equal to the truth.
func TestCLIMovesCollectionsToAnotherSource(t *testing.T) {
	t.Parallel()
	relayA := testrelay.New()
	t.Cleanup(relayA.Close)
	names := networkShaped(relayA, 4, 300)
	relayA.SetLLMsTxt(testrelay.LexiconList(names...))
	relayB := relayA.Mirror()
	t.Cleanup(relayB.Close)
	srcA, err := source.Parse(relayA.URL)
	require.NoError(t, err)
	srcB, err := source.Parse(relayB.URL)
	require.NoError(t, err)
	svc := newService(t, relayA, "COLINDEX_PAGE_LIMIT=10", "COLINDEX_PAGE_PAUSE=20ms")
	svc.start()
	env := svc.adminEnv()

	// Paused, so the cancelled start binds the collections to A without paging any.
	for _, cmd := range [][]string{{"pause"}, {"start"}, {"cancel"}, {"resume"}} { // start: the default source, A
		out, err := svc.cli(t, env, cmd...)
		require.NoError(t, err, "%s: %s", cmd, out)
	}

	out, err := svc.cli(t, env, "start", relayB.URL)
	require.Error(t, err, "a start naming B must not page collections bound to A")
	require.Contains(t, out, "4 of the collections it would page are bound to "+srcA.Name)
	require.Contains(t, out, "colindex move-source "+srcB.Name)

	out, err = svc.cli(t, env, "move-source", relayB.URL)
	require.NoError(t, err, out)
	require.Contains(t, out, "moved 4 collections to "+srcB.Name+" (cursors kept): 4 from "+srcA.Name)
	require.Contains(t, out, "4 wait for `colindex start`")
	out, err = svc.cli(t, env, "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "paging from "+srcB.Name+" (4 collections")

	requestsA := relayA.Requests()
	out, err = svc.cli(t, env, "start", relayB.URL)
	require.NoError(t, err, out)
	st := svc.waitIdle(time.Minute)
	require.Equal(t, 4, st.Completed)
	for _, c := range st.Collections {
		require.Equal(t, srcB.Name, c.Source, c.Collection)
		require.EqualValues(t, len(relayA.Collection(c.Collection)), c.Imported, "%s counted exactly once", c.Collection)
		want := slices.Sorted(slices.Values(relayA.Collection(c.Collection)))
		require.Equal(t, want, svc.listAll(c.Collection), c.Collection)
	}
	require.Equal(t, requestsA, relayA.Requests(), "nothing paged from A after the move")
	require.NotZero(t, relayB.Requests())

	// One collection back to A, from the beginning: it waits for a start, then pages from A.
	out, err = svc.cli(t, env, "move-source", relayA.URL, "--collection", names[0], "--restart")
	require.NoError(t, err, out)
	require.Contains(t, out, "moved 1 collection to "+srcA.Name+" (paged again from the beginning)")
	before := len(relayA.Starts(names[0]))
	out, err = svc.cli(t, env, "start")
	require.NoError(t, err, out)
	require.Contains(t, out, "1 collection to page")
	svc.waitIdle(time.Minute)
	out, err = svc.cli(t, env, "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "paging from "+srcB.Name+" (3 collections), "+srcA.Name+" (1 collection)")
	st, _ = svc.status()
	for _, c := range st.Collections {
		require.True(t, c.Completed, c.Collection)
		require.EqualValues(t, len(relayA.Collection(c.Collection)), c.Imported, "%s counted exactly once", c.Collection)
	}
	starts := relayA.Starts(names[0])[before:]
	require.NotEmpty(t, starts)
	require.Zero(t, starts[0], "the restart paged %s from the beginning", names[0])
	require.True(t, slices.IsSorted(starts), "never paged again past a committed cursor: %v", starts)
}

func TestMoveAndSourceWording(t *testing.T) {
	t.Parallel()
	res := &goclient.MoveResult{Source: "relay.example", Cursor: "restart", Continuing: 1, Enqueued: 2, Waiting: 1, Unchanged: 3,
		Moved: []goclient.MovedCollection{{Collection: "a.b.c", From: "bsky.network"}, {Collection: "a.b.d", From: "bsky.network"},
			{Collection: "a.b.e", From: "old.example"}, {Collection: "a.b.f", From: "bsky.network"}}}
	require.Equal(t, "moved 4 collections to relay.example (paged again from the beginning): 3 from bsky.network, "+
		"1 from old.example; 1 goes on paging from it, 2 without a chain start paging from it, 1 waits for `colindex start`, 3 already there",
		moveSummary(res))
	require.Equal(t, "nothing moved: 1 collection is already bound to relay.example",
		moveSummary(&goclient.MoveResult{Source: "relay.example", Unchanged: 1}))

	st := &goclient.Status{Collections: []goclient.CollectionStatus{
		{Collection: "a.b.c", Source: "bsky.network", Completed: true},
		{Collection: "a.b.d", Source: "relay.example"},
		{Collection: "a.b.e", Source: "relay.example", Completed: true},
	}}
	require.Equal(t, "paging from relay.example (2 collections, 1 incomplete), bsky.network (1 collection)", sourcesLine(st))
	require.Equal(t, "  from relay.example", fromSource(st, st.Collections[1]))
	st.Collections = st.Collections[1:]
	require.Empty(t, fromSource(st, st.Collections[0]), "one source: the sources line names it")
}
