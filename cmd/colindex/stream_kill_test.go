package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
)

// streamWorld is the truth the kill test's stream describes: each account's records and
// status, mirrored into the stand-in PDS the verify jobs ask.
type streamWorld struct {
	accts   []*fakerelay.Account
	records map[string]map[string][]string // did → collection → rkeys
	status  map[string]string              // "" active, "takendown", "deleted"
	network *fakepds.Server
	n       int
	history map[string][]string // did → what happened to it, for a failure's message
}

func (w *streamWorld) note(did string, seq int64, what string) {
	w.history[did] = append(w.history[did], fmt.Sprintf("%d %s", seq, what))
}

func (w *streamWorld) sync(did, coll string) {
	w.network.SetRecords(did, coll, len(w.records[did][coll]))
}

// listed is what listReposByCollection must answer: per collection, the active accounts
// holding at least one record of it.
func (w *streamWorld) listed() map[string][]string {
	out := map[string][]string{}
	for did, colls := range w.records {
		if w.status[did] != "" {
			continue
		}
		for coll, rkeys := range colls {
			if len(rkeys) > 0 {
				out[coll] = append(out[coll], did)
			}
		}
	}
	for _, dids := range out {
		slices.Sort(dids)
	}
	return out
}

// step appends one random event to the relay and applies it to the truth.
func (w *streamWorld) step(t *testing.T, rng *rand.Rand, relay *fakerelay.Relay, colls []string) {
	a := w.accts[rng.IntN(len(w.accts))]
	did := a.DID
	switch st := w.status[did]; {
	case st == "deleted":
		return
	case st != "" && rng.IntN(2) == 0: // reactivated
		seq, err := relay.AccountStatus(did, true, "")
		require.NoError(t, err)
		w.note(did, seq, "active")
		w.status[did] = ""
		w.network.SetFault(did, fakepds.NoFault)
		return
	case st != "":
		return
	}
	switch k := rng.IntN(100); {
	case k < 2: // deleted, final
		seq, err := relay.AccountStatus(did, false, "deleted")
		require.NoError(t, err)
		w.note(did, seq, "deleted")
		w.status[did] = "deleted"
		w.network.SetFault(did, fakepds.RepoNotFound)
	case k < 5:
		seq, err := relay.AccountStatus(did, false, "takendown")
		require.NoError(t, err)
		w.note(did, seq, "takendown")
		w.status[did] = "takendown"
		w.network.SetFault(did, fakepds.RepoTakendown)
	default:
		// One to three ops over random collections: creates, and deletes of the account's
		// records (often its last of a collection).
		var ops []fakerelay.Op
		touched := map[string]bool{}
		for range 1 + rng.IntN(3) {
			coll := colls[rng.IntN(len(colls))]
			if touched[coll] {
				continue
			}
			touched[coll] = true
			if rkeys := w.records[did][coll]; len(rkeys) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(rkeys))
				ops = append(ops, fakerelay.Delete(coll, rkeys[i]))
				w.records[did][coll] = slices.Delete(slices.Clone(rkeys), i, i+1)
			} else {
				w.n++
				rkey := fmt.Sprintf("r%07d", w.n)
				ops = append(ops, fakerelay.Create(coll, rkey))
				w.records[did][coll] = append(w.records[did][coll], rkey)
			}
		}
		evt, err := a.Commit(ops...)
		require.NoError(t, err)
		proof := "proof"
		if rng.IntN(5) == 0 {
			evt.Blocks = nil // no proof: its deletes go to the PDS check
			proof = "no blocks"
		}
		seq, err := relay.Append(&events.XRPCStreamEvent{RepoCommit: evt})
		require.NoError(t, err)
		w.note(did, seq, fmt.Sprintf("%v (%s)", ops, proof))
		for coll := range touched {
			w.sync(did, coll)
		}
	}
}

// SIGKILL mid-stream, several times, with last-record deletes in single and multi-op commits,
// account deletions, takedowns and reactivations, commits without blocks checked with a PDS
// that fails at times: afterwards every collection lists exactly the truth, compared as sets,
// and every count equals it. (did:web accounts are resolved in TestVerifyResolvesDIDWeb: the
// binary cannot be pointed at a stand-in for https on port 443.)
func TestEndToEndStreamSurvivesKillsExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns and kills colindex")
	}
	t.Parallel()
	network := fakepds.New()
	t.Cleanup(network.Close)
	// A follower without a cursor starts at the relay's live tail: connected before the first
	// event, it sees them all (and from its first event on, a restart resumes exactly).
	svc, relay := followingService(t, "COLINDEX_PLC_URL="+network.PLC.URL, "COLINDEX_VERIFY_ALLOW_PRIVATE=true")
	rng := rand.New(rand.NewPCG(5, 6))
	colls := []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow", "com.example.rare", "com.example.tail"}
	w := &streamWorld{records: map[string]map[string][]string{}, status: map[string]string{}, network: network,
		history: map[string][]string{}}
	for i := range 60 {
		a, err := fakerelay.NewAccount(fmt.Sprintf("did:plc:kill%020d", i))
		require.NoError(t, err)
		w.accts = append(w.accts, a)
		w.records[a.DID] = map[string][]string{}
	}
	// Its first event saves the cursor before it applies anything: here the kills start.
	first := w.accts[0]
	seq, err := relay.Commit(first, fakerelay.Create("com.example.first", "f1"))
	require.NoError(t, err)
	w.records[first.DID]["com.example.first"] = []string{"f1"}
	network.SetRecords(first.DID, "com.example.first", 1)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var fh struct {
			Cursor int64 `json:"cursor"`
		}
		_, body := svc.call(http.MethodGet, "/admin/firehose")
		require.NoError(t, json.Unmarshal(body, &fh))
		if fh.Cursor >= seq-1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no starting cursor: %s", body)
	}

	const rounds = 5
	midStream := 0 // kills that landed before the durable cursor reached the relay's last seq
	for round := range rounds {
		// A flaky PDS for a few accounts this round: their checks fail and are retried.
		flaky := map[string]bool{}
		for range 5 {
			if a := w.accts[rng.IntN(len(w.accts))]; w.status[a.DID] == "" {
				flaky[a.DID] = true
				network.SetFault(a.DID, fakepds.ServerError)
			}
		}
		// Odd rounds: the burst reaches the relay while colindex is down, and the kill lands
		// in its catch-up, the durable cursor behind the relay's last seq. Even rounds:
		// colindex follows the burst live (on a fast machine it keeps up, so those kills
		// mostly land between events).
		down := round%2 == 1
		if down {
			_ = svc.stop(syscall.SIGKILL) // its exit error is the kill
		}
		for range 300 {
			w.step(t, rng, relay, colls)
		}
		var at struct {
			Cursor int64 `json:"cursor"`
			Events int64 `json:"events_total"`
		}
		if down {
			// Killed once the new process has applied some of the burst: inside its catch-up.
			svc.start()
			for deadline := time.Now().Add(30 * time.Second); at.Events == 0; time.Sleep(time.Millisecond) {
				require.True(t, time.Now().Before(deadline), "the restarted follower applied nothing")
				_, body := svc.call(http.MethodGet, "/admin/firehose")
				require.NoError(t, json.Unmarshal(body, &at))
			}
		} else {
			// Past a flush (250 ms): the durable cursor moves on, so the next restart resumes
			// from inside the log rather than from its start.
			time.Sleep(time.Duration(260+rng.IntN(200)) * time.Millisecond)
			_, body := svc.call(http.MethodGet, "/admin/firehose")
			require.NoError(t, json.Unmarshal(body, &at))
		}
		if at.Cursor < relay.LastSeq() {
			midStream++
		}
		_ = svc.stop(syscall.SIGKILL) // its exit error is the kill
		for did := range flaky {
			if w.status[did] == "" {
				network.SetFault(did, fakepds.NoFault)
			}
		}
		svc.start()
		t.Logf("round %d: killed with the durable cursor at %d of %d", round, at.Cursor, relay.LastSeq())
	}
	require.Positive(t, midStream, "some kills landed mid-stream")

	// Caught up, and every PDS check done.
	last := relay.LastSeq()
	svc.waitSettled(last, 2*time.Minute)

	want := w.listed()
	for _, coll := range append(colls, "com.example.first") {
		got := svc.listAll(coll)
		for _, did := range append(slices.Clone(want[coll]), got...) {
			if slices.Contains(want[coll], did) != slices.Contains(got, did) {
				t.Logf("%s in %s: want %v, history:\n%s", did, coll, slices.Contains(want[coll], did), strings.Join(w.history[did], "\n"))
			}
		}
		require.Equal(t, want[coll], got, "%s lists exactly the truth", coll)
	}
	code, body := svc.call(http.MethodGet, "/v1/listCollections?limit=1000")
	require.Equal(t, http.StatusOK, code)
	var counts struct {
		Collections map[string]int64 `json:"collections"`
	}
	require.NoError(t, json.Unmarshal(body, &counts))
	wantCounts := map[string]int64{}
	for coll, dids := range want {
		wantCounts[coll] = int64(len(dids))
	}
	require.Equal(t, wantCounts, counts.Collections, "counts equal the truth")
	statuses := slices.Collect(maps.Values(w.status))
	t.Logf("%d events, %d rounds of kills; %d accounts deleted, %d taken down at the end",
		last, rounds, countOf(statuses, "deleted"), countOf(statuses, "takendown"))
}

func countOf(list []string, v string) (n int) {
	for _, s := range list {
		if s == v {
			n++
		}
	}
	return n
}
