package firehose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/metrics"
)

// startAtZero saves cursor 0 so the follower replays the relay's whole log.
func startAtZero(t *testing.T, b *testBundle) *running {
	t.Helper()
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	return start(t, b.config(b.ix))
}

// A dropped connection is redialled and resumed from the watermark: nothing lost.
func TestDroppedConnectionResumes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := startAtZero(t, b)
	accts := []*fakerelay.Account{newAccount(t, 1), newAccount(t, 2), newAccount(t, 3)}
	var last int64
	for round := range 3 {
		for i, a := range accts {
			last = b.commit(t, a, fakerelay.Create(post, "3k"+strconv.Itoa(round*10+i)), fakerelay.Create("com.example.c"+strconv.Itoa(round), "x"+strconv.Itoa(i)))
		}
		b.waitDurable(t, last)
		b.relay.DropConnections()
	}
	last = b.commit(t, accts[0], fakerelay.Create(like, "3kz"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	st := r.f.Status()
	require.GreaterOrEqual(t, st.Reconnects, int64(3))
	cursors := b.relay.Cursors()
	require.GreaterOrEqual(t, len(cursors), 4)
	for _, c := range cursors[1:] {
		n, err := strconv.ParseInt(c, 10, 64)
		require.NoError(t, err, "every reconnect resumes from a cursor")
		require.Positive(t, n)
	}
}

// A malformed frame ends the connection (indigo's decoder gives up on it); the follower logs
// it, reconnects from the watermark and loses nothing.
func TestMalformedFrameReconnects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := startAtZero(t, b)
	a := newAccount(t, 1)
	seq := b.commit(t, a, fakerelay.Create(post, "3k1"))
	b.waitDurable(t, seq)
	b.relay.Inject(fakerelay.MalformedFrame())
	await.Until(t, 30*time.Second, "a reconnect", func() (bool, any) { st := r.f.Status(); return st.Reconnects >= 1, st })
	require.Contains(t, r.f.Status().LastError, "reading repoCommit event")
	last := b.commit(t, a, fakerelay.Create(like, "3k2"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
}

// setupPastRetention leaves a relay whose oldest event is seq 2 (seq 1 trimmed away, never
// seen): cursor 0 is older than its retention. The truth holds what comes after.
func setupPastRetention(t *testing.T) (*testBundle, *fakerelay.Account) {
	t.Helper()
	b := setup(t)
	a := newAccount(t, 1)
	b.commit(t, a, fakerelay.Create(post, "3k1"))
	b.truth = newTruth()
	b.commit(t, a, fakerelay.Create(like, "3k2"))
	b.relay.Trim(1)
	return b, a
}

// A cursor older than the relay's retention gets #info OutdatedCursor: reported, and the
// follower carries on from the oldest event the relay still has.
func TestOutdatedCursorIsReportedAndFollowed(t *testing.T) {
	t.Parallel()
	b, a := setupPastRetention(t)
	r := startAtZero(t, b)
	last := b.commit(t, a, fakerelay.Create(profile, "self"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	require.Contains(t, r.f.Status().LastError, "OutdatedCursor")
	// Status learns the cursor just after Postgres does.
	await.Until(t, 30*time.Second, "the status cursor", func() (bool, any) { st := r.f.Status(); return st.Cursor == last, st })
}

// An OutdatedCursor gap reaches OnGap with the cursor the follower asked from, before any
// later event is applied: while OnGap fails (Postgres down, say) the cursor stays before the
// gap and nothing after it is applied; the next connection asks from the same cursor and
// reports the same gap again, and only then does the stream go on.
func TestOutdatedCursorGapIsRecordedBeforeTheStreamGoesOn(t *testing.T) {
	t.Parallel()
	b, a := setupPastRetention(t)
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))

	type report struct {
		after int64
		msg   string
	}
	reports := make(chan report, 100)
	var failing atomic.Bool
	failing.Store(true)
	cfg := b.config(b.ix)
	cfg.OnGap = func(_ context.Context, after int64, kind, msg string) error {
		if kind != GapOutdatedCursor {
			return fmt.Errorf("kind %q", kind)
		}
		reports <- report{after, msg}
		if failing.Load() {
			return errors.New("postgres is down")
		}
		return nil
	}
	r := start(t, cfg)
	for range 2 { // two connections, each told of the gap, each failing to record it
		select {
		case got := <-reports:
			require.Equal(t, int64(0), got.after, "the gap begins after the cursor the follower asked from")
		case <-time.After(30 * time.Second):
			t.Fatal("OnGap was never called")
		}
	}
	require.Equal(t, int64(0), b.durableCursor(t), "the cursor does not pass a gap that is not recorded")
	colls, err := b.ix.CollectionsOf(a.DID)
	require.NoError(t, err)
	require.Empty(t, colls, "nothing after an unrecorded gap is applied")
	require.Contains(t, r.f.Status().LastError, "record the gap after seq 0")

	failing.Store(false)
	last := b.commit(t, a, fakerelay.Create(profile, "self"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	require.Contains(t, r.f.Status().LastError, "gap recorded")
}

// A relay that is down at start is retried with backoff until it answers.
func TestRelayDownAtStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAccount(t, 1)
	seq := b.commit(t, a, fakerelay.Create(post, "3k1"))
	b.relay.SetDown(true)
	r := startAtZero(t, b)
	await.Until(t, 30*time.Second, "two failed dials", func() (bool, any) { st := r.f.Status(); return st.Reconnects >= 2, st })
	require.False(t, r.f.Status().Connected)
	require.Contains(t, r.f.Status().LastError, "dial")
	require.Equal(t, int64(0), b.durableCursor(t))
	b.relay.SetDown(false)
	b.waitDurable(t, seq)
	b.requireIndexMatches(t, b.ix)
}

// Events with an invalid DID or path are logged, counted and skipped; the valid ops of the
// same commit are applied and the cursor moves past them (neither stuck nor skipping).
func TestInvalidDIDAndPathAreSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAccount(t, 1)
	evt, err := a.Commit(fakerelay.Create(post, "3k1"))
	require.NoError(t, err)
	evt.Repo = "not a did"
	_, err = b.relay.Append(&events.XRPCStreamEvent{RepoCommit: evt})
	require.NoError(t, err)

	evt, err = a.Commit(fakerelay.Create(like, "3k2"))
	require.NoError(t, err)
	b.truth.add(a.DID, like, "3k2")
	evt.Ops = append(evt.Ops,
		&comatproto.SyncSubscribeRepos_RepoOp{Action: "create", Path: "no-slash"},
		&comatproto.SyncSubscribeRepos_RepoOp{Action: "create", Path: "not..an.nsid/rkey"},
		&comatproto.SyncSubscribeRepos_RepoOp{Action: "frobnicate", Path: profile + "/self"},
		nil)
	_, err = b.relay.Append(&events.XRPCStreamEvent{RepoCommit: evt})
	require.NoError(t, err)
	_, err = b.relay.Append(&events.XRPCStreamEvent{RepoAccount: &comatproto.SyncSubscribeRepos_Account{
		Did: "did:bad", Active: false, Time: syntax.DatetimeNow().String(),
	}})
	require.NoError(t, err)
	last := b.commit(t, a, fakerelay.Create(profile, "self"))

	r := startAtZero(t, b)
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	colls, err := b.ix.Collections()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{like, profile}, colls)
	require.Zero(t, r.f.Status().Reconnects)
	// Each skip is counted once, by reason: the commit's and the account event's DIDs, the
	// two paths, the action, the nil op.
	bad := map[string]float64{}
	for _, reason := range []string{"invalid_did", "invalid_path", "invalid_action", "nil_op", "seq_out_of_order"} {
		bad[reason] = metrics.Value(r.f.metrics.FirehoseBadEvents.WithLabelValues(reason))
	}
	require.Equal(t, map[string]float64{"invalid_did": 2, "invalid_path": 2, "invalid_action": 1, "nil_op": 1, "seq_out_of_order": 0}, bad)
}

// deleteWithoutBlocks appends a commit deleting collection/rkey of a, sent without its blocks:
// the proof cannot settle it.
func (b *testBundle) deleteWithoutBlocks(t *testing.T, a *fakerelay.Account, collection, rkey string) int64 {
	t.Helper()
	evt, err := a.Commit(fakerelay.Delete(collection, rkey))
	require.NoError(t, err)
	evt.Blocks = nil
	seq, err := b.relay.Append(&events.XRPCStreamEvent{RepoCommit: evt})
	require.NoError(t, err)
	b.truth.del(a.DID, collection, rkey)
	return seq
}

// An event that cannot be applied (here the hook for a delete the proof cannot settle fails
// once) stops the cursor before it; the connection is restarted and the event replayed until
// it is applied, and counted once.
func TestFailedEventIsReplayedNotSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, other := newAccount(t, 1), newAccount(t, 2)
	b.commit(t, a, fakerelay.Create(post, "3k0"), fakerelay.Create(post, "3k1"))
	// The proof cannot settle it, so the hook is called. 3k0 is left: the pair stays either way.
	failing := b.deleteWithoutBlocks(t, a, post, "3k1")
	last := b.commit(t, other, fakerelay.Create(like, "3k2"))

	var calls atomic.Int32
	release := make(chan struct{})
	cfg := b.config(b.ix)
	cfg.OnRecordDelete = func(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit, coll string) error {
		if coll != post {
			return errors.New("unexpected collection " + coll)
		}
		if calls.Add(1) == 1 {
			return errors.New("injected failure")
		}
		<-release
		return nil
	}
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	r := start(t, cfg)
	await.Until(t, 30*time.Second, "the replay", func() (bool, any) { n := calls.Load(); return n >= 2, fmt.Sprintf("%d calls", n) })
	// Held inside the replayed event: the cursor is below it, however far other accounts got.
	require.Less(t, b.durableCursor(t), failing)
	require.Contains(t, r.f.Status().LastError, "injected failure")
	close(release)
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	st := r.f.Status()
	require.GreaterOrEqual(t, st.Reconnects, int64(1))
	// The failed batch's events were received twice and count once: only an applied batch
	// reaches the counters.
	require.EqualValues(t, last, st.EventsTotal, "every event once")
	require.EqualValues(t, 3, st.CommitsTotal)
	require.EqualValues(t, 1, st.RemovalsUndecided)
}

// The watermark: out-of-order finishes move it only over a contiguous done prefix, a failure
// holds it until reset, and a relay repeating an old seq never moves it back.
func TestTrackerIsALowWatermark(t *testing.T) {
	t.Parallel()
	tr := newTracker(10)
	reg := func(seq int64) *slot {
		s, _ := tr.register(seq, "")
		return s
	}
	s11, s12, s13, s14 := reg(11), reg(12), reg(13), reg(14)
	tr.finish(s13, true)
	tr.finish(s12, true)
	require.Equal(t, int64(10), tr.watermark())
	tr.finish(s11, true)
	require.Equal(t, int64(13), tr.watermark())
	tr.finish(s14, false)
	s15 := reg(15)
	tr.finish(s15, true)
	require.Equal(t, int64(13), tr.watermark(), "held by the failed 14")
	require.Equal(t, int64(13), tr.reset())
	require.Zero(t, tr.pending())
	old, inOrder := tr.register(5, "")
	require.False(t, inOrder)
	tr.finish(old, true)
	require.Equal(t, int64(13), tr.watermark())
	require.EqualValues(t, 1, tr.outOfOrder)
}

// An error frame (here FutureCursor) is reported; the relay closes, and the follower redials
// from the same cursor and carries on.
func TestErrorFrameIsReportedAndRedialled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := startAtZero(t, b)
	a := newAccount(t, 1)
	seq := b.commit(t, a, fakerelay.Create(post, "3k1"))
	b.waitDurable(t, seq)
	require.NoError(t, b.relay.ErrorFrame("FutureCursor", "cursor in the future"))
	await.Until(t, 30*time.Second, "a reconnect", func() (bool, any) { st := r.f.Status(); return st.Reconnects >= 1, st })
	require.Contains(t, r.f.Status().LastError, "FutureCursor")
	last := b.commit(t, a, fakerelay.Create(like, "3k2"))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	require.Equal(t, strconv.FormatInt(seq, 10), b.relay.Cursors()[1])
}

// A follower with no cursor starts at the relay's live tail, and saves the cursor just
// before its first event at once, before that event is applied: a crash after it replays
// from there, instead of starting again at the tail and skipping what came between. (The
// flush interval here is an hour: only the starting save can have written it.)
func TestFirstEventSavesTheStartingCursorFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := b.config(b.ix)
	cfg.FlushInterval = time.Hour
	r := start(t, cfg)
	await.Until(t, 30*time.Second, "a connection", func() (bool, any) { n := b.relay.Connections(); return n > 0, fmt.Sprintf("%d connections", n) })
	a := newAccount(t, 1)
	seq := b.commit(t, a, fakerelay.Create("com.example.first", "r1"))
	await.Until(t, 30*time.Second, "the starting cursor saved", func() (bool, any) { c := b.durableCursor(t); return c == seq-1, fmt.Sprintf("cursor %d", c) })
	await.Until(t, 30*time.Second, "the event applied", func() (bool, any) {
		colls, err := b.ix.CollectionsOf(a.DID)
		require.NoError(t, err)
		return len(colls) == 1, colls
	})
	require.Equal(t, seq-1, b.durableCursor(t), "no other save before the interval")
	r.stop(t)
	require.Equal(t, seq, b.durableCursor(t), "the last save on the way out")
}

// A dropped connection resumes after the last event applied, not from the durable cursor:
// nothing applied is sent again, so the counters count each event once. (The flush interval
// is an hour: the durable cursor stays at 0 all along.)
func TestReconnectResumesAfterTheLastAppliedEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, other := newAccount(t, 1), newAccount(t, 2)
	b.commit(t, a, fakerelay.Create(post, "3k0"), fakerelay.Create(post, "3k1"))
	b.deleteWithoutBlocks(t, a, post, "3k1") // undecided: counted in removals_undecided
	b.account(t, other.DID, false, "takendown")
	applied := b.commit(t, other, fakerelay.Create(like, "3k2"))

	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	cfg := b.config(b.ix)
	cfg.FlushInterval = time.Hour
	r := start(t, cfg)
	has := func(did, coll string) func() (bool, any) {
		return func() (bool, any) {
			colls, err := b.ix.CollectionsOf(did)
			require.NoError(t, err)
			return slices.Contains(colls, coll), colls
		}
	}
	await.Until(t, 30*time.Second, "the events applied", has(other.DID, like))

	b.relay.DropConnections()
	await.Until(t, 30*time.Second, "a reconnect", func() (bool, any) { n := len(b.relay.Cursors()); return n >= 2, b.relay.Cursors() })
	require.Equal(t, strconv.FormatInt(applied, 10), b.relay.Cursors()[1], "resumed after the last event applied")
	require.Zero(t, b.durableCursor(t), "not from the durable cursor")
	last := b.commit(t, a, fakerelay.Create("com.example.after", "3k3"))
	await.Until(t, 30*time.Second, "the event after the reconnect applied", has(a.DID, "com.example.after"))
	st := r.f.Status()
	require.EqualValues(t, last, st.EventsTotal, "every event once")
	require.EqualValues(t, 4, st.CommitsTotal)
	require.EqualValues(t, 1, st.RemovalsUndecided)
	require.GreaterOrEqual(t, st.Reconnects, int64(1))
	r.stop(t)
	b.requireIndexMatches(t, b.ix)
}
