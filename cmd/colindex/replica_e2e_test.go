package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
)

// A replica copies its peer and follows the same relay on its own: it answers 503 (starting)
// until its copy is complete and its stream caught up, survives a SIGKILL mid-copy, and then
// lists exactly what its peer lists, compared as sets with the truth, for the backfilled
// collections, the stream's, and one the peer only ever saw on its stream. Events keep coming
// before, during and after the copy: account takedowns hidden from the copied pages and
// reactivated later, last-record deletes, commits without blocks.
func TestReplicaCopiesItsPeerAndFollowsTheSameStream(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns two colindex processes")
	}
	t.Parallel()
	src := testrelay.New()
	t.Cleanup(src.Close)
	names := networkShaped(src, 8, 1500)
	src.SetLLMsTxt(testrelay.LexiconList(names...))
	relay := fakerelay.New(t)
	network := fakepds.New()
	t.Cleanup(network.Close)
	stream := []string{"COLINDEX_FIREHOSE_URL=" + relay.URL(), "COLINDEX_PLC_URL=" + network.PLC.URL,
		"COLINDEX_VERIFY_ALLOW_PRIVATE=true", "COLINDEX_PAGE_LIMIT=100"}

	peer := newService(t, src, stream...)
	peer.start()
	waitConnected(t, relay)
	rng := rand.New(rand.NewPCG(7, 8))
	colls := []string{"app.bsky.feed.post", "app.bsky.feed.like", "com.example.rare"}
	w := &streamWorld{records: map[string]map[string][]string{}, status: map[string]string{}, network: network,
		history: map[string][]string{}}
	for i := range 40 {
		a, err := fakerelay.NewAccount(fmt.Sprintf("did:plc:repl%020d", i))
		require.NoError(t, err)
		w.accts = append(w.accts, a)
		w.records[a.DID] = map[string][]string{}
	}
	steps := func(n int, colls []string) {
		for range n {
			w.step(t, rng, relay, colls)
		}
	}
	steps(200, colls)
	code, body := peer.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	peer.waitIdle(2 * time.Minute)
	// A collection the peer knows from its stream only (no backfill row): its pages carry
	// Colindex-Backfill: none, which a replica accepts.
	late := append(slices.Clone(colls), "com.example.late")
	steps(50, late)
	// Accounts with records, taken down before the copy: the peer's pages leave them out, and
	// when they are reactivated after it, the replica must learn their pairs from their PDS.
	var hidden []*fakerelay.Account
	for i := range 3 {
		a, err := fakerelay.NewAccount(fmt.Sprintf("did:plc:hide%020d", i))
		require.NoError(t, err)
		hidden = append(hidden, a)
		coll := colls[i%len(colls)]
		_, err = relay.Commit(a, fakerelay.Create(coll, "h1"))
		require.NoError(t, err)
		w.records[a.DID] = map[string][]string{coll: {"h1"}}
		network.SetRecords(a.DID, coll, 1)
		_, err = relay.AccountStatus(a.DID, false, "takendown")
		require.NoError(t, err)
		w.status[a.DID] = "takendown"
		network.SetFault(a.DID, fakepds.RepoTakendown)
	}
	peer.waitSettled(relay.LastSeq(), time.Minute)
	_, ph := peer.health()
	require.True(t, ph.Ready, "the peer is ready: %+v", ph)

	replica := newService(t, src, append(stream, "COLINDEX_REPLICA_OF="+peer.base, "COLINDEX_PAGE_PAUSE=20ms")...)
	replica.start()
	require.Equal(t, http.StatusServiceUnavailable, replica.firstHealth, "a replica takes no readers before its copy")
	// Seeded and copying: the stream has its cursor and the copy's run has started.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		_, h := replica.health()
		if h.Firehose != nil && h.Firehose.Cursor >= 0 && (h.Backfill == "running" || h.Backfill == "complete") {
			t.Logf("killed with the copy %s", h.Backfill)
			break
		}
		require.True(t, time.Now().Before(deadline), "the replica never started its copy: %+v", h)
	}
	steps(100, late) // during the copy
	_ = replica.stop(syscall.SIGKILL)
	replica.start()
	steps(100, late)

	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		code, h := replica.health()
		require.Equal(t, peer.base, h.ReplicaOf)
		if h.Ready {
			require.Equal(t, http.StatusOK, code)
			break
		}
		require.Equal(t, http.StatusServiceUnavailable, code, "a replica that is not ready answers 503")
		require.Equal(t, "starting", h.Status)
		require.True(t, time.Now().Before(deadline), "the replica never became ready: %+v", h)
	}
	out, err := replica.cli(t, replica.adminEnv(), "status")
	require.NoError(t, err, out)
	require.Contains(t, out, "replica of "+peer.base+": ready", "colindex status says so")
	out, err = peer.cli(t, peer.adminEnv(), "status")
	require.NoError(t, err, out)
	require.NotContains(t, out, "replica of", "the peer is no replica")
	steps(100, late) // after it is ready
	for _, a := range hidden {
		_, err := relay.AccountStatus(a.DID, true, "")
		require.NoError(t, err)
		w.status[a.DID] = ""
		network.SetFault(a.DID, fakepds.NoFault)
	}
	last := relay.LastSeq()
	peer.waitSettled(last, time.Minute)
	replica.waitSettled(last, time.Minute)

	want := w.listed()
	for _, coll := range names {
		want[coll] = slices.Sorted(slices.Values(src.Collection(coll)))
	}
	wantCounts := map[string]int64{}
	for coll, dids := range want {
		wantCounts[coll] = int64(len(dids))
	}
	for _, svc := range []*service{peer, replica} {
		for _, coll := range append(slices.Clone(names), late...) {
			require.Equal(t, want[coll], svc.listAll(coll), "%s: %s lists exactly the truth", svc.base, coll)
		}
		code, body := svc.call(http.MethodGet, "/v1/listCollections?limit=1000")
		require.Equal(t, http.StatusOK, code)
		var counts struct {
			Collections map[string]int64 `json:"collections"`
		}
		require.NoError(t, json.Unmarshal(body, &counts))
		require.Equal(t, wantCounts, counts.Collections, "%s: counts equal the truth", svc.base)
	}
	require.Contains(t, replica.logs.String(), "the stream resumes from its saved cursor", "the restart kept its seeded cursor")
	t.Logf("%d events; %d collections compared on both", last, len(want))
}
