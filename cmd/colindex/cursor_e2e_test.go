package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/sdk/goclient"
)

// An operator moves the firehose cursor with `colindex firehose-cursor`: a cursor ahead of the
// relay (as after the relay's sequence was reset) gets FutureCursor, which the follower reports
// and holds on (it never picks a cursor by itself); moving it back replays the relay's log and
// leaves the listings exactly as they were; live goes to the live tail. Bad arguments are
// refused before anything is sent.
func TestEndToEndFirehoseCursorMoves(t *testing.T) {
	t.Parallel()
	svc, relay := followingService(t)
	env := svc.adminEnv()
	waitFor := svc.waitFor
	type fhStatus struct {
		Cursor    int64  `json:"cursor"`
		Connected bool   `json:"connected"`
		LastError string `json:"last_error"`
	}
	status := func() fhStatus {
		code, body := svc.call(http.MethodGet, "/admin/firehose")
		require.Equal(t, http.StatusOK, code, string(body))
		var fh fhStatus
		require.NoError(t, json.Unmarshal(body, &fh))
		return fh
	}

	dids := []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"}
	for _, did := range dids {
		a, err := fakerelay.NewAccount(did)
		require.NoError(t, err)
		_, err = relay.Commit(a, fakerelay.Create("app.bsky.feed.post", "p1"), fakerelay.Create("app.bsky.feed.like", "l1"))
		require.NoError(t, err)
		_, err = relay.Commit(a, fakerelay.Delete("app.bsky.feed.like", "l1"))
		require.NoError(t, err)
	}
	_, err := relay.AccountStatus(dids[1], false, "deleted")
	require.NoError(t, err)
	last := relay.LastSeq()
	waitFor("the cursor reaches the last event", func() bool { return status().Cursor >= last })
	want := map[string][]string{"app.bsky.feed.post": dids[:1], "app.bsky.feed.like": nil}
	requireListings := func() {
		t.Helper()
		for coll, dids := range want {
			require.ElementsMatch(t, dids, svc.listAll(coll), coll)
		}
	}
	requireListings()

	for bad, says := range map[string]string{
		"-3": "flag provided but not defined: -3", "abc": `"abc" is not a seq`, "": "usage: colindex firehose-cursor SEQ|live",
	} {
		out, err := svc.cli(t, env, "firehose-cursor", bad)
		require.Error(t, err, "firehose-cursor %q: %s", bad, out)
		require.Contains(t, out, says)
	}
	require.Equal(t, last, status().Cursor, "refused moves change nothing")

	out, err := svc.cli(t, env, "firehose-cursor", "900")
	require.NoError(t, err, out)
	require.Contains(t, out, fmt.Sprintf("moved from %d to 900", last))
	require.Contains(t, out, "recorded for the events skipped", "a move forward skips events: a gap")
	waitFor("FutureCursor is reported", func() bool { return strings.Contains(status().LastError, "FutureCursor") })
	waitFor("FutureCursor is recorded as a gap after 900", func() bool {
		for _, g := range svc.gaps().Gaps {
			if g.AfterSeq == 900 {
				return true
			}
		}
		return false
	})
	require.EqualValues(t, 900, status().Cursor, "held, not guessed")
	out, err = svc.cli(t, env, "firehose")
	require.NoError(t, err, out)
	require.Contains(t, out, "FutureCursor")

	out, err = svc.cli(t, env, "firehose-cursor", "0")
	require.NoError(t, err, out)
	require.Contains(t, out, "moved back from 900 to 0: the events after it are replayed")
	require.NotContains(t, out, "gap", "a move back replays: no gap")
	waitFor("the replay reaches the last event", func() bool { st := status(); return st.Cursor >= last && st.Cursor < 900 })
	requireListings()

	out, err = svc.cli(t, env, "firehose-cursor", "live", "--json")
	require.NoError(t, err, out)
	var moved struct {
		Cursor, Previous int64
		URL              string
		GapID            *int64 `json:"gap_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &moved), out)
	require.EqualValues(t, -1, moved.Cursor)
	require.Equal(t, last, moved.Previous)
	require.NotNil(t, moved.GapID, "a move to the live tail skips events: a gap (the first one again while its refresh has not started)")
	waitFor("a dial at the live tail", func() bool {
		cs := relay.Cursors()
		return cs[len(cs)-1] == "" && len(cs) > 2 && status().Connected
	})
	c, err := fakerelay.NewAccount("did:plc:cccccccccccccccccccccccc")
	require.NoError(t, err)
	seq, err := relay.Commit(c, fakerelay.Create("app.bsky.feed.like", "l9"))
	require.NoError(t, err)
	waitFor("the new event is durable", func() bool { return status().Cursor >= seq })
	want["app.bsky.feed.like"] = []string{c.DID}
	requireListings()
}

// The move's one line says where from and what it means, for each kind of move.
func TestMovedCursorLine(t *testing.T) {
	t.Parallel()
	p := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		previous *int64
		cursor   int64
		gap      *int64
		says     string
	}{
		{nil, 5, nil, "moved from none saved to 5: the stream resumes after it"},
		{p(-1), 5, nil, "moved from the live tail to 5: the stream resumes after it"},
		{p(9), 5, nil, "moved back from 9 to 5: the events after it are replayed"},
		{p(9), -1, p(3), "moved from 9 to the live tail: events before it are skipped; gap 3 recorded"},
		{p(9), 12, p(4), "moved from 9 to 12: the stream resumes after it; gap 4 recorded"},
	} {
		line := movedCursorLine(&goclient.MovedCursor{URL: "wss://relay.example", Cursor: tc.cursor, Previous: tc.previous, GapID: tc.gap})
		require.Contains(t, line, tc.says)
	}
}
