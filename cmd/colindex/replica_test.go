package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// A replica's stream starts at its peer's durable cursor, read from the peer's /_health:
// only a peer that follows the same relay is trusted (another relay's seq means nothing), a
// peer with no durable cursor yet is waited for, as is one with an open gap in its stream (its
// index may miss adds from before its cursor), and a cursor already saved (a restart) wins.
func TestReplicaSeedsItsStreamFromThePeer(t *testing.T) {
	t.Parallel()
	var answer atomic.Value
	peerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, answer.Load().(string))
	}))
	t.Cleanup(peerSrv.Close)
	peer, err := source.Parse(peerSrv.URL)
	require.NoError(t, err)
	ix, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(ix.Close)
	follower, err := firehose.New(firehose.Config{URL: "wss://relay.example/", Pool: pgtest.NewPool(t), Index: ix})
	require.NoError(t, err)
	rep := &replica{peer: peer, client: source.NewClient(0), follower: follower, log: slog.Default()}
	ctx := context.Background()
	health := func(relay string, cursor int64) string {
		return fmt.Sprintf(`{"status":"ok","firehose":{"url":%q,"cursor":%d}}`, relay, cursor)
	}

	answer.Store(`{"status":"ok"}`) // a peer that follows no stream
	_, err = rep.trySeed(ctx)
	require.ErrorIs(t, err, errReplicaRelay)
	answer.Store(health("wss://other.example", 42))
	_, err = rep.trySeed(ctx)
	require.ErrorIs(t, err, errReplicaRelay)
	require.ErrorContains(t, err, "wss://other.example")
	answer.Store(health("wss://relay.example", -1))
	done, err := rep.trySeed(ctx)
	require.False(t, done)
	require.ErrorContains(t, err, "no durable cursor yet")
	_, saved, err := follower.SavedCursor(ctx)
	require.NoError(t, err)
	require.False(t, saved, "nothing is saved before the peer has a cursor")
	answer.Store(`{"status":"ok","firehose":{"url":"wss://relay.example","cursor":42,"gaps_open":1}}`)
	done, err = rep.trySeed(ctx)
	require.False(t, done)
	require.ErrorContains(t, err, "1 open gap")
	_, saved, err = follower.SavedCursor(ctx)
	require.NoError(t, err)
	require.False(t, saved, "nothing is saved while the peer's index may miss adds")

	answer.Store(health("wss://relay.example", 42))
	done, err = rep.trySeed(ctx)
	require.NoError(t, err)
	require.True(t, done)
	seq, saved, err := follower.SavedCursor(ctx)
	require.NoError(t, err)
	require.True(t, saved)
	require.EqualValues(t, 42, seq)

	// A restart: the saved cursor wins over wherever the peer is now.
	answer.Store(health("wss://relay.example", 99))
	done, err = rep.trySeed(ctx)
	require.NoError(t, err)
	require.True(t, done)
	seq, _, err = follower.SavedCursor(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 42, seq)

	// An operator's move to the live tail before the copy began is no progress: starting
	// there would skip the events between the peer's cursor and now, which the copied pages
	// may miss. The peer's cursor replaces it, under a new generation, as a move would.
	moved, err := follower.MoveCursor(ctx, firehose.LiveTail)
	require.NoError(t, err)
	done, err = rep.trySeed(ctx)
	require.NoError(t, err)
	require.True(t, done)
	seq, _, err = follower.SavedCursor(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 99, seq, "the peer's cursor replaces a saved live tail")
	again, err := follower.MoveCursor(ctx, 7)
	require.NoError(t, err)
	require.Greater(t, again.Generation, moved.Generation+1, "the seed took a generation of its own")
}

// A replica's gap refresh pages from its peer, so it waits while the peer has an open gap (or
// cannot count its gaps); a standalone colindex has no such wait.
func TestReplicaRefreshWaitsForAPeerWithoutGaps(t *testing.T) {
	t.Parallel()
	var answer atomic.Value
	peerSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, answer.Load().(string))
	}))
	t.Cleanup(peerSrv.Close)
	require.Nil(t, peerWithoutGaps("", source.NewClient(0)))
	ready := peerWithoutGaps(peerSrv.URL, source.NewClient(0))
	for gaps, ok := range map[int]bool{2: false, -1: false, 0: true} {
		answer.Store(fmt.Sprintf(`{"status":"ok","firehose":{"url":"wss://relay.example","cursor":42,"gaps_open":%d}}`, gaps))
		err := ready(context.Background())
		if ok {
			require.NoError(t, err, "gaps_open %d", gaps)
		} else {
			require.ErrorContains(t, err, "open gap", "gaps_open %d", gaps)
		}
	}
}

// The backfill is followed by a sweep of the firehose's relay unless the setting is off, the
// firehose is disabled, or this is a replica (its peer swept its own pages).
func TestSweepAfterBackfillIsTheFirehosesRelay(t *testing.T) {
	t.Parallel()
	const relay = "wss://relay.example"
	on := config{SweepAfterBackfill: true}
	require.Equal(t, relay, sweepAfterBackfill(on, relay))
	require.Empty(t, sweepAfterBackfill(on, ""), "no firehose")
	require.Empty(t, sweepAfterBackfill(config{}, relay), "turned off")
	require.Empty(t, sweepAfterBackfill(config{SweepAfterBackfill: true, ReplicaOf: "http://peer:2510"}, relay), "a replica")
}
