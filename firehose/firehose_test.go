package firehose

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

const (
	post    = "app.bsky.feed.post"
	like    = "app.bsky.feed.like"
	profile = "app.bsky.actor.profile"
)

// The stream's effects on the index, end to end: creates and updates add both sides, a
// collection first seen on the stream is listed, a record delete removes the pair only with
// the account's last record of the collection (decided from the commit's blocks), inactive
// accounts are hidden and come back, a deleted account loses every pair for good, and the
// durable cursor reaches the last event.
func TestFollowAppliesEventsToTheIndex(t *testing.T) {
	t.Parallel()
	b := setup(t)
	accts := make([]*fakerelay.Account, 6)
	for i := range accts {
		accts[i] = newAccount(t, i)
	}
	// Something before the follower starts with a saved cursor of 0: it replays from there.
	b.commit(t, accts[0], fakerelay.Create(post, "3k000"))
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))

	r := start(t, b.config(b.ix))
	b.commit(t, accts[1], fakerelay.Create(like, "3k001"), fakerelay.Create(profile, "self"))
	b.commit(t, accts[1], fakerelay.Update(profile, "self"))
	b.commit(t, accts[2], fakerelay.Create("com.example.brand.new", "3k002")) // first seen here
	b.commit(t, accts[3], fakerelay.Create(post, "3k003"), fakerelay.Create(post, "3k004"))
	b.commit(t, accts[3], fakerelay.Delete(post, "3k003")) // one of two: the pair stays
	b.commit(t, accts[3], fakerelay.Delete(post, "3k004")) // the last one: the pair goes
	b.commit(t, accts[4], fakerelay.Create(post, "3k005"), fakerelay.Create(like, "3k006"))
	b.commit(t, accts[5], fakerelay.Create(like, "3k007"))
	b.account(t, accts[4].DID, false, "takendown")
	b.account(t, accts[5].DID, false, "deactivated")
	b.account(t, accts[5].DID, true, "")
	b.account(t, accts[1].DID, false, "deleted")
	last := b.commit(t, accts[1], fakerelay.Create(post, "3k008")) // after deletion: not put back

	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	colls, err := b.ix.Collections()
	require.NoError(t, err)
	require.Contains(t, colls, "com.example.brand.new")
	kept, err := b.ix.CollectionsOf(accts[4].DID)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{post, like}, kept, "a taken-down account keeps its pairs")

	// Status learns the cursor just after Postgres does.
	await.Until(t, 30*time.Second, "the status cursor", func() (bool, any) { st := r.f.Status(); return st.Cursor == last, st })
	st := r.f.Status()
	require.Equal(t, b.relay.URL(), st.URL)
	require.True(t, st.Following)
	require.True(t, st.Connected)
	require.EqualValues(t, last, st.EventsTotal, "every event once (seq 1 replayed from cursor 0)")
	require.EqualValues(t, 10, st.CommitsTotal)
	require.EqualValues(t, 1, st.AccountsRemoved)
	require.EqualValues(t, 1, st.PairsRemoved)
	require.Zero(t, st.RemovalsUndecided)
	removed, err := b.ix.Removed(post, accts[3].DID)
	require.NoError(t, err)
	require.True(t, removed, "a tombstone keeps backfill pages from putting it back")
	require.NotNil(t, st.LastEventTime)
	require.Empty(t, st.LastError)
	require.Equal(t, []string{"0"}, b.relay.Cursors())
	// The metrics count each event once: 10 commits and 4 account events; 8 pairs new to
	// the index (the update, the second create of one collection and the create after the
	// deletion add none); one pair proved gone, and the deleted account's two.
	m := r.f.metrics
	require.Equal(t, 10.0, metrics.Value(m.FirehoseEvents.WithLabelValues("commit")))
	require.Equal(t, 4.0, metrics.Value(m.FirehoseEvents.WithLabelValues("account")))
	require.Equal(t, 8.0, metrics.Value(m.FirehoseIndexAdds))
	require.Equal(t, map[string]int64{"proof": 1, "account_deletion": 2, "pds_check": 0, "sync": 0, "sweep": 0}, m.RemovalsByCause())
	r.stop(t)
	require.False(t, r.f.Status().Following)
}

// A restart resumes from the durable cursor, and replaying what the index already holds
// changes nothing.
func TestRestartResumesFromTheDurableCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c := newAccount(t, 1), newAccount(t, 2)
	b.account(t, c.DID, false, "suspended") // the live tail starts after this: set it up front
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))

	r := start(t, b.config(b.ix))
	first := b.commit(t, a, fakerelay.Create(post, "3k1"))
	b.waitDurable(t, first)
	r.stop(t)
	saved := b.durableCursor(t)
	require.Equal(t, first, saved)

	b.commit(t, a, fakerelay.Create(like, "3k2"))
	b.account(t, a.DID, false, "deleted")
	last := b.commit(t, c, fakerelay.Create(post, "3k3"))
	r = start(t, b.config(b.ix))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	require.Equal(t, []string{"0", strconv.FormatInt(saved, 10)}, b.relay.Cursors())
	r.stop(t)

	// Replaying the whole log over the finished index leaves it as it is.
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	r = start(t, b.config(b.ix))
	b.waitDurable(t, last)
	b.requireIndexMatches(t, b.ix)
	r.stop(t)
}

// Only one process follows per database: a second follower (another serve process, its own
// index) waits on the lock, and takes over from the saved cursor when the first stops.
func TestOneFollowerPerDatabase(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAccount(t, 1)
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	first := start(t, b.config(b.ix))
	await.Until(t, 30*time.Second, "the first follower to connect", func() (bool, any) { st := first.f.Status(); return st.Connected, st })

	other := openIndex(t)
	second := start(t, b.config(other))
	seq := b.commit(t, a, fakerelay.Create(post, "3k1"))
	b.waitDurable(t, seq)
	require.False(t, second.f.Status().Following)
	require.Equal(t, 1, b.relay.Connections())

	first.stop(t)
	await.Until(t, 30*time.Second, "the second follower to take over", func() (bool, any) { st := second.f.Status(); return st.Connected, st })
	last := b.commit(t, a, fakerelay.Create(like, "3k2"))
	b.waitDurable(t, last)
	require.Equal(t, []string{"0", strconv.FormatInt(seq, 10)}, b.relay.Cursors())
	colls, err := other.CollectionsOf(a.DID)
	require.NoError(t, err)
	require.Equal(t, []string{like}, colls, "the second follower started after what the first had made durable")
}

func TestNewChecksTheURL(t *testing.T) {
	t.Parallel()
	ix := openIndex(t)
	for raw, want := range map[string]string{
		"wss://bsky.network":          "wss://bsky.network",
		"ws://127.0.0.1:2470/":        "ws://127.0.0.1:2470",
		" wss://relay.example/base/ ": "wss://relay.example/base",
		"wss://bsky.network?cursor=5": "wss://bsky.network",
		"https://bsky.network":        "",
		"bsky.network":                "",
		"ws://":                       "",
	} {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			f, err := New(Config{URL: raw, Pool: &pgxpool.Pool{}, Index: ix})
			if want == "" {
				require.ErrorIs(t, err, ErrBadURL)
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, f.Status().URL)
			require.Equal(t, want+subscribePath, f.endpoint.String())
			require.Equal(t, int64(-1), f.Status().Cursor)
		})
	}
}

// A follower whose index is not the one the database is bound to applies nothing durable:
// it cannot move the cursor, and says why.
func TestFollowerOfAnotherIndexCannotMoveTheCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := newAccount(t, 1)
	require.NoError(t, queries.FirehoseCursorSet(t.Context(), b.pool, cursorParams(b.relayKey(), 0)))
	_, err := b.pool.Exec(t.Context(), `INSERT INTO index_identity (index_id) VALUES ('some-other-index')`)
	require.NoError(t, err)
	r := start(t, b.config(b.ix))
	b.commit(t, a, fakerelay.Create(post, "3k1"))
	await.Until(t, 30*time.Second, "the refusal", func() (bool, any) {
		st := r.f.Status()
		return strings.Contains(st.LastError, "bound to another index"), st
	})
	require.Zero(t, b.durableCursor(t), "the cursor did not move")
}

// One batch (the applier's unit) that mixes adds of several accounts with last-record
// deletes. The flush writes the adds, then the removals, then adds again the pairs added
// after their last removal (batch.go), which must leave the index, its counts and its
// tombstones as the events in stream order would: an add then a removal, a removal then an
// add, a removal of a pair that was there before the batch. A delete the proof cannot settle
// must find every earlier write of the batch in the index when its check is handed over.
// Compared with the truth as sets.
func TestOneBatchOfAddsAndDeletesIsExact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, c, d, e, g := newAccount(t, 1), newAccount(t, 2), newAccount(t, 3), newAccount(t, 4), newAccount(t, 5)
	var checked []string
	cfg := b.config(b.ix)
	cfg.OnRecordDelete = func(_ context.Context, evt *comatproto.SyncSubscribeRepos_Commit, coll string) error {
		colls, err := b.ix.CollectionsOf(evt.Repo)
		if err != nil {
			return err
		}
		checked = append(checked, coll)
		if !slices.Contains(colls, like) {
			return fmt.Errorf("check of %s handed over before the batch's earlier add of %s (index has %v)", coll, like, colls)
		}
		return nil
	}
	f, err := New(cfg)
	require.NoError(t, err)
	var batch []*events.XRPCStreamEvent
	add := func(acct *fakerelay.Account, ops ...fakerelay.Op) *comatproto.SyncSubscribeRepos_Commit {
		evt, err := acct.Commit(ops...)
		require.NoError(t, err)
		b.truth.apply(acct.DID, ops)
		batch = append(batch, &events.XRPCStreamEvent{RepoCommit: evt})
		return evt
	}
	// Before the batch: e has a post, g two.
	add(e, fakerelay.Create(post, "3k100"))
	add(g, fakerelay.Create(post, "3k101"), fakerelay.Create(post, "3k102"))
	require.NoError(t, f.applyBatch(t.Context(), batch))
	batch = nil

	add(a, fakerelay.Create(post, "3k001"))
	add(c, fakerelay.Create(post, "3k002"))
	add(a, fakerelay.Delete(post, "3k001")) // a's only post, created in this batch: gone
	add(d, fakerelay.Create(like, "3k003"))
	add(c, fakerelay.Create(like, "3k004"))
	add(d, fakerelay.Create(like, "3k005"))
	add(d, fakerelay.Delete(like, "3k003")) // d keeps a like
	add(c, fakerelay.Delete(post, "3k002")) // c's only post: gone, while d's adds are queued
	add(a, fakerelay.Create(like, "3k006"))
	add(a, fakerelay.Create(post, "3k007"), fakerelay.Delete(like, "3k006")) // a post again, no like
	add(e, fakerelay.Create(post, "3k008"))                                  // e's post pair is already there
	add(e, fakerelay.Delete(post, "3k100"), fakerelay.Delete(post, "3k008")) // and goes: the count drops
	add(g, fakerelay.Create(like, "3k009"))
	unsettled := add(g, fakerelay.Delete(post, "3k101")) // g keeps 3k102
	unsettled.Blocks = nil                               // the proof cannot settle it: the check gets it
	require.NoError(t, f.applyBatch(t.Context(), batch))
	require.Equal(t, []string{post}, checked)
	b.requireIndexMatches(t, b.ix)
	for _, p := range []rocksindex.Pair{{Collection: post, DID: c.DID}, {Collection: like, DID: a.DID}, {Collection: post, DID: e.DID}} {
		removed, err := b.ix.Removed(p.Collection, p.DID)
		require.NoError(t, err)
		require.True(t, removed, "tombstone of %v", p)
	}
	removed, err := b.ix.Removed(post, a.DID)
	require.NoError(t, err)
	require.False(t, removed, "a's post came back in the same batch")
}

// A delete whose proof says the account keeps records of the collection is evidence the pair
// exists: if the index lacks it (here removed by hand, as a wrong removal or a missed create
// would leave it), the batch puts it back, tombstone cleared; unless a later delete of the
// same batch proves it gone.
func TestKeptVerdictPutsBackAMissingPair(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f, err := New(b.config(b.ix))
	require.NoError(t, err)
	h, k := newAccount(t, 11), newAccount(t, 12)
	var batch []*events.XRPCStreamEvent
	add := func(acct *fakerelay.Account, ops ...fakerelay.Op) {
		evt, err := acct.Commit(ops...)
		require.NoError(t, err)
		b.truth.apply(acct.DID, ops)
		batch = append(batch, &events.XRPCStreamEvent{RepoCommit: evt})
	}
	add(h, fakerelay.Create(post, "3k201"), fakerelay.Create(post, "3k202"), fakerelay.Create(post, "3k203"))
	add(k, fakerelay.Create(post, "3k301"), fakerelay.Create(post, "3k302"))
	require.NoError(t, f.applyBatch(t.Context(), batch))
	batch = nil
	// Both pairs lost, wrongly: the index now lies about h and k.
	n, err := b.ix.RemovePairs([]rocksindex.Pair{{Collection: post, DID: h.DID}, {Collection: post, DID: k.DID}})
	require.NoError(t, err)
	require.Equal(t, 2, n)

	add(h, fakerelay.Delete(post, "3k201")) // h keeps two posts: Kept
	add(k, fakerelay.Delete(post, "3k301")) // k keeps one: Kept ...
	add(k, fakerelay.Delete(post, "3k302")) // ... then its last goes: Gone
	add(h, fakerelay.Delete(post, "3k202")) // h keeps one: Kept again
	require.NoError(t, f.applyBatch(t.Context(), batch))

	b.requireIndexMatches(t, b.ix)
	removed, err := b.ix.Removed(post, h.DID)
	require.NoError(t, err)
	require.False(t, removed, "h's tombstone cleared")
	removed, err = b.ix.Removed(post, k.DID)
	require.NoError(t, err)
	require.True(t, removed, "k's pair proved gone after it was kept")
}
