package firehose

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/rocksindex"
)

// A relay whose sequence was reset answers the saved cursor with FutureCursor, and the
// follower can do nothing about it by itself: it reports it and keeps the cursor (it never
// guesses a new one). An operator's move gets it going again, and the index is exact.
func TestFutureCursorHoldsUntilTheCursorIsMoved(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c := newAccount(t, 1), newAccount(t, 2)
	b.commit(t, a, fakerelay.Create(post, "3k1"), fakerelay.Create(like, "3k2"))
	b.commit(t, c, fakerelay.Create(post, "3k3"))
	var gaps []string
	var mu sync.Mutex
	cfg := b.config(b.ix)
	cfg.OnGap = func(_ context.Context, after int64, kind, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		gaps = append(gaps, fmt.Sprintf("%s after %d", kind, after))
		return nil
	}
	r := startPastTheRelayWith(t, b, cfg)
	require.Contains(t, r.f.Status().LastError, "FutureCursor")
	require.Contains(t, r.f.Status().LastError, "colindex firehose-cursor SEQ|live", "the way out")
	mu.Lock()
	require.Equal(t, []string{GapFutureCursor + " after 500"}, gaps,
		"FutureCursor is a gap after the saved cursor, reported once however often the relay says it")
	mu.Unlock()
	require.Equal(t, int64(500), b.durableCursor(t), "the follower keeps the cursor it cannot use")
	colls, err := b.ix.Collections()
	require.NoError(t, err)
	require.Empty(t, colls, "nothing applied")

	moved, err := r.f.MoveCursor(t.Context(), 0)
	require.NoError(t, err)
	require.Equal(t, int64(500), *moved.Previous)
	// Noticed by the idle follower's check (keepAlive), then the whole log is followed.
	last := b.commit(t, a, fakerelay.Delete(like, "3k2"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	require.Contains(t, b.relay.Cursors(), "0")
}

// startPastTheRelay starts a follower from cursor 500, as if the relay had stood there before
// its sequence began again, and waits until the relay has turned it away twice.
func startPastTheRelay(t *testing.T, b *testBundle) *running {
	t.Helper()
	return startPastTheRelayWith(t, b, b.config(b.ix))
}

func startPastTheRelayWith(t *testing.T, b *testBundle, cfg Config) *running {
	t.Helper()
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 500)))
	r := start(t, cfg)
	await.Until(t, 30*time.Second, "FutureCursor answers", func() (bool, any) {
		st := r.f.Status()
		return st.Reconnects >= 2, st
	})
	return r
}

// Moving the cursor back replays the events after it, which changes nothing twice: the index
// (pairs, statuses, counts) equals the truth as sets afterwards, through an account deletion
// and last-record deletes. And the running follower, which stood further on, never writes
// its own cursor over the move.
func TestRewindReplaysAndChangesNothingTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	accts := []*fakerelay.Account{newAccount(t, 1), newAccount(t, 2), newAccount(t, 3)}
	var last int64
	for i, a := range accts {
		b.commit(t, a, fakerelay.Create(post, "3k"+strconv.Itoa(i)), fakerelay.Create(like, "3l"+strconv.Itoa(i)))
	}
	b.commit(t, accts[0], fakerelay.Delete(like, "3l0")) // its last like: the pair goes
	b.account(t, accts[1].DID, false, rocksindex.StatusDeleted)
	b.account(t, accts[2].DID, false, "takendown")
	last = b.commit(t, accts[0], fakerelay.Create(profile, "self"))
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	cfg := b.config(b.ix)
	// A lock retry far beyond the test's waits: after a move the follower follows again at
	// once, not after a lock retry as after a failure.
	cfg.LockRetry = 10 * time.Minute
	r := start(t, cfg)
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	dials := len(b.relay.Cursors())

	moved, err := r.f.MoveCursor(t.Context(), 0)
	require.NoError(t, err)
	require.Equal(t, last, *moved.Previous)
	// The follower's own save cannot land on the move (the generation it began with is old).
	n, err := queries.FirehoseCursorSave(t.Context(), b.pool, pgstore.FirehoseCursorSaveParams{
		Relay: b.relayKey(), Seq: last, Generation: 0})
	require.NoError(t, err)
	require.Zero(t, n, "a save from before the move")
	await.Until(t, 30*time.Second, "a dial from the moved cursor", func() (bool, any) {
		cs := b.relay.Cursors()
		return slices.Contains(cs[dials:], "0"), cs
	})
	last = b.commit(t, accts[0], fakerelay.Create(like, "3m"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	require.Equal(t, "", r.f.Status().LastError, "a move is not an error")
}

// Moving to the live tail skips what the relay holds and follows new events only; a seq below
// -1 is refused.
func TestMoveToTheLiveTail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAccount(t, 1)
	b.commit(t, a, fakerelay.Create(post, "3k1"))
	r := startPastTheRelay(t, b)
	_, err := r.f.MoveCursor(t.Context(), -2)
	require.ErrorContains(t, err, "-1 for the live tail")
	require.Equal(t, int64(500), b.durableCursor(t), "a refused move changes nothing")

	_, err = r.f.MoveCursor(t.Context(), LiveTail)
	require.NoError(t, err)
	await.Until(t, 30*time.Second, "a dial at the live tail", func() (bool, any) {
		cs := b.relay.Cursors()
		return cs[len(cs)-1] == "" && r.f.Status().Connected, cs
	})
	b.truth = newTruth() // the skipped create is not in the index
	last := b.commit(t, a, fakerelay.Create(like, "3k2"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	colls, err := b.ix.CollectionsOf(a.DID)
	require.NoError(t, err)
	require.Equal(t, []string{like}, colls, "only the event after the move")
}

// A move says what it replaced: nothing on a relay never followed, then the live tail.
func TestMoveReportsWhatItReplaced(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f, err := New(b.config(b.ix))
	require.NoError(t, err)
	first, err := f.MoveCursor(t.Context(), LiveTail)
	require.NoError(t, err)
	require.Nil(t, first.Previous)
	second, err := f.MoveCursor(t.Context(), 7)
	require.NoError(t, err)
	require.Equal(t, int64(LiveTail), *second.Previous)
	require.Greater(t, second.Generation, first.Generation)
	require.Equal(t, int64(7), b.durableCursor(t))
}

// The cursor is saved with the time of the events it passed, which is when the stream stood
// there even for a follower hours behind: a move reports it, not the save's time. A PDS
// clock ahead of this one's counts for no later than the save.
func TestCursorKeepsTheTimeOfItsEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	appendAt := func(i int, at time.Time) int64 {
		t.Helper()
		seq, err := b.relay.Append(&events.XRPCStreamEvent{RepoAccount: &comatproto.SyncSubscribeRepos_Account{
			Did: newAccount(t, i).DID, Active: true, Time: at.UTC().Format(syntax.AtprotoDatetimeLayout)}})
		require.NoError(t, err)
		return seq
	}
	hoursAgo := time.Now().Add(-3 * time.Hour).Truncate(time.Millisecond)
	last := appendAt(1, hoursAgo)
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	cfg := b.config(b.ix)
	cfg.LockRetry = 10 * time.Minute
	r := start(t, cfg)
	b.waitDurable(t, last)
	moved, err := r.f.MoveCursor(t.Context(), last)
	require.NoError(t, err)
	require.True(t, hoursAgo.Equal(moved.PreviousLiveAt), "%s, want the event's %s", moved.PreviousLiveAt, hoursAgo)

	ahead := appendAt(2, time.Now().Add(24*time.Hour))
	b.waitDurable(t, ahead)
	moved, err = r.f.MoveCursor(t.Context(), ahead)
	require.NoError(t, err)
	require.False(t, moved.PreviousLiveAt.After(time.Now()), "a relay's clock ahead counts as the save's time")
	require.True(t, moved.PreviousLiveAt.After(hoursAgo))
}

// The time saved with the cursor is the median of the events' times since the last save: one
// PDS's clock far ahead or far behind does not move it; times that do not parse are left out;
// none at all is unknown. The tracker keeps the times of the events it passed, and gives them
// up once taken.
func TestMedianTimeIsThePDSesMiddleClock(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	require.Equal(t, at("2026-12-07T10:00:01Z"), *medianTime([]string{"2026-12-07T10:00:00Z", "2030-01-01T00:00:00Z", "2026-12-07T10:00:01Z", "soon"}))
	require.Equal(t, at("2026-12-07T10:00:00Z"), *medianTime([]string{"1990-01-01T00:00:00Z", "2026-12-07T10:00:00Z", "2026-12-07T10:00:01Z"}))
	require.Equal(t, at("2026-12-07T10:00:00Z"), *medianTime([]string{"2026-12-07T10:00:01Z", "2026-12-07T10:00:00Z"}), "of two, the earlier")
	require.Nil(t, medianTime([]string{"", "soon"}))

	tr := newTracker(0)
	first, _ := tr.register(1, "2026-12-07T10:00:00Z")
	second, _ := tr.register(2, "")
	third, _ := tr.register(3, "2026-12-07T10:00:02Z")
	tr.finish(first, true)
	tr.finish(third, true)
	mark, times := tr.watermarkTimes()
	require.Equal(t, int64(1), mark)
	require.Equal(t, []string{"2026-12-07T10:00:00Z"}, times, "only the events passed")
	tr.finish(second, true)
	require.Equal(t, int64(3), tr.watermark())
	mark, times = tr.watermarkTimes()
	require.Equal(t, int64(3), mark)
	require.Equal(t, []string{"2026-12-07T10:00:02Z"}, times, "kept until taken; an event without a time adds none")
	_, times = tr.watermarkTimes()
	require.Empty(t, times, "taken once")
}
