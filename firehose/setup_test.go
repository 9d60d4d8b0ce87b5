package firehose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testlog"
	"github.com/colindex/colindex/rocksindex"
)

// testBundle is one follower's world: a fake relay, a database, an index.
type testBundle struct {
	relay *fakerelay.Relay
	pool  *pgxpool.Pool
	dir   string
	ix    *rocksindex.Index
	truth *truth
	log   *slog.Logger // warnings and errors go to the test's log
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	log := testlog.New(t) // first, so that its cleanup runs after the follower's
	dir := t.TempDir()
	ix, err := rocksindex.Open(dir)
	require.NoError(t, err)
	b := &testBundle{relay: fakerelay.New(t), pool: pgtest.NewPool(t), dir: dir, ix: ix, truth: newTruth(), log: log}
	t.Cleanup(func() {
		if b.ix != nil {
			b.ix.Close()
		}
	})
	return b
}

// testConfig is fast: reconnects and lock retries in milliseconds.
func (b *testBundle) config(ix *rocksindex.Index) Config {
	return Config{
		URL: b.relay.URL(), Pool: b.pool, Index: ix,
		Logger:        b.log,
		FlushInterval: 20 * time.Millisecond,
		MinBackoff:    5 * time.Millisecond,
		MaxBackoff:    50 * time.Millisecond,
		LockRetry:     20 * time.Millisecond,
	}
}

// running is a follower started by start; stop ends it and waits.
type running struct {
	f      *Firehose
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returns
	err    error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		require.NoError(t, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	f, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{f: f, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// durableCursor reads the cursor Postgres holds (-1 for none).
func (b *testBundle) durableCursor(t *testing.T) int64 {
	t.Helper()
	saved, err := queries.FirehoseCursorGet(context.Background(), b.pool, b.relayKey())
	if errors.Is(err, pgx.ErrNoRows) {
		return -1
	}
	require.NoError(t, err)
	return saved.Seq
}

func (b *testBundle) relayKey() string { return b.relay.URL() }

// waitDurable waits until the durable cursor reaches seq.
func (b *testBundle) waitDurable(t *testing.T, seq int64) {
	t.Helper()
	await.Until(t, 30*time.Second, fmt.Sprintf("durable cursor %d", seq), func() (bool, any) {
		c := b.durableCursor(t)
		return c >= seq, fmt.Sprintf("cursor %d", c)
	})
}

// truth is what the index should hold, kept beside the relay's log: every account's records,
// so a pair is there iff the account has a record of the collection and is not deleted.
type truth struct {
	records map[string]map[string]map[string]bool // did -> collection -> rkeys
	status  map[string]string                     // did -> "" (active) or an inactive status
}

func newTruth() *truth {
	return &truth{records: map[string]map[string]map[string]bool{}, status: map[string]string{}}
}

// add records a create or update of collection/rkey by did.
func (tr *truth) add(did, coll, rkey string) {
	if tr.status[did] == rocksindex.StatusDeleted {
		return
	}
	if tr.records[did] == nil {
		tr.records[did] = map[string]map[string]bool{}
	}
	if tr.records[did][coll] == nil {
		tr.records[did][coll] = map[string]bool{}
	}
	tr.records[did][coll][rkey] = true
}

// del records a delete of collection/rkey by did.
func (tr *truth) del(did, coll, rkey string) {
	delete(tr.records[did][coll], rkey)
	if len(tr.records[did][coll]) == 0 {
		delete(tr.records[did], coll)
	}
}

// collectionsOf is the collections did has records in.
func (tr *truth) collectionsOf(did string) []string {
	return slices.Sorted(maps.Keys(tr.records[did]))
}

func (tr *truth) setStatus(did, status string) {
	if tr.status[did] == rocksindex.StatusDeleted {
		return
	}
	tr.status[did] = status
	if status == rocksindex.StatusDeleted {
		delete(tr.records, did)
	}
}

// commit appends a commit to the relay and records its adds.
func (b *testBundle) commit(t *testing.T, a *fakerelay.Account, ops ...fakerelay.Op) int64 {
	t.Helper()
	seq, err := b.relay.Commit(a, ops...)
	require.NoError(t, err)
	b.truth.apply(a.DID, ops)
	return seq
}

// apply records a commit's ops.
func (tr *truth) apply(did string, ops []fakerelay.Op) {
	for _, op := range ops {
		if op.Action == "delete" {
			tr.del(did, op.Collection, op.Rkey)
		} else {
			tr.add(did, op.Collection, op.Rkey)
		}
	}
}

func (b *testBundle) account(t *testing.T, did string, active bool, status string) int64 {
	t.Helper()
	seq, err := b.relay.AccountStatus(did, active, status)
	require.NoError(t, err)
	if active {
		status = ""
	}
	b.truth.setStatus(did, status)
	return seq
}

// requireIndexMatches compares the index with the truth as sets: every DID's collections
// (cbr), and every collection's listed DIDs (rbc through ListRepos, inactive hidden).
func (b *testBundle) requireIndexMatches(t *testing.T, ix *rocksindex.Index) {
	t.Helper()
	dids := slices.Sorted(maps.Keys(b.truth.status))
	for did := range b.truth.records {
		if !slices.Contains(dids, did) {
			dids = append(dids, did)
		}
	}
	wantListed := map[string][]string{}
	for _, did := range dids {
		want := b.truth.collectionsOf(did)
		got, err := ix.CollectionsOf(did)
		require.NoError(t, err)
		require.ElementsMatch(t, want, got, "collections of %s", did)
		if b.truth.status[did] == "" {
			for _, c := range want {
				wantListed[c] = append(wantListed[c], did)
			}
		}
	}
	// The counts listCollections serves: exactly the listed DIDs, across kills and removals.
	wantCounts := map[string]int64{}
	for c, l := range wantListed {
		wantCounts[c] = int64(len(l))
	}
	gotCounts := map[string]int64{}
	for _, cc := range ix.CollectionCounts("", 0) {
		gotCounts[cc.Collection] = cc.Count
	}
	require.Equal(t, wantCounts, gotCounts, "per-collection counts")
	colls, err := ix.Collections()
	require.NoError(t, err)
	for _, c := range colls {
		got, err := ix.ListRepos(c, "", 1_000_000)
		require.NoError(t, err)
		want := wantListed[c]
		sort.Strings(want)
		require.ElementsMatch(t, want, got, "listed DIDs of %s", c)
		delete(wantListed, c)
	}
	require.Empty(t, wantListed, "collections missing from the index")
}

func newAccount(t testing.TB, i int) *fakerelay.Account {
	t.Helper()
	a, err := fakerelay.NewAccount(fmt.Sprintf("did:plc:%024d", i))
	require.NoError(t, err)
	return a
}

func cursorParams(relay string, seq int64) pgstore.FirehoseCursorSetParams {
	return pgstore.FirehoseCursorSetParams{Relay: relay, Seq: seq}
}

func openIndex(t *testing.T) *rocksindex.Index {
	t.Helper()
	ix, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(ix.Close)
	return ix
}
