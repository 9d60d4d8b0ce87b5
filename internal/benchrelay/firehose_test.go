package benchrelay

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/bluesky-social/indigo/events/schedulers/sequential"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakerelay"
)

// The local firehose carries what a follower must handle, as real frames read by indigo's
// consumer: creates across the data set's collections, record deletes, takedowns, returns and
// account deletions, by the data set's accounts; its account list knows every account of the
// data set, the active ones in listRepos and every one in getRepoStatus, with the status the
// stream gave it.
func TestFirehoseCarriesEveryKindOfEvent(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 20, Pairs: 2000, LargestShare: 0.3})
	f, err := NewFirehose(d, 40, 7)
	require.NoError(t, err)
	const n = 3000
	for range n {
		require.NoError(t, f.Next())
	}
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	con, _, err := websocket.DefaultDialer.DialContext(ctx,
		"ws"+strings.TrimPrefix(srv.URL, "http")+"/xrpc/com.atproto.sync.subscribeRepos?cursor=0", nil)
	require.NoError(t, err)
	kinds := map[string]int{}
	collections := map[string]bool{}
	statuses := map[string]string{} // the last #account of each DID
	var last int64
	inOrder := true
	seen := func(seq int64) error { // every event once, in order; the stream ends at the last
		inOrder = inOrder && seq == last+1
		last = seq
		if seq == n {
			cancel()
		}
		return nil
	}
	cb := &events.RepoStreamCallbacks{
		RepoCommit: func(evt *comatproto.SyncSubscribeRepos_Commit) error {
			for _, op := range evt.Ops {
				kinds[op.Action]++
				collections[strings.SplitN(op.Path, "/", 2)[0]] = true
			}
			return seen(evt.Seq)
		},
		RepoAccount: func(evt *comatproto.SyncSubscribeRepos_Account) error {
			st := "active"
			if !evt.Active {
				st = *evt.Status
			}
			kinds[st]++
			statuses[evt.Did] = st
			return seen(evt.Seq)
		},
	}
	sched := sequential.NewScheduler("test", cb.EventHandler)
	go func() {
		<-ctx.Done()
		con.Close()
	}()
	_ = events.HandleRepoStream(ctx, con, sched, slog.Default())
	require.EqualValues(t, n, last)
	require.True(t, inOrder, "every event once, in order")
	for _, k := range []string{"create", "delete", "takendown", "active", "deleted"} {
		require.Positive(t, kinds[k], "%s in %v", k, kinds)
	}
	require.Greater(t, len(collections), 5, "creates spread over the collections")
	for c := range collections {
		_, ok := d.index[c]
		require.True(t, ok, "%s is a collection of the data set", c)
	}

	resp, err := http.Get(srv.URL + "/xrpc/com.atproto.sync.listRepos?limit=1000")
	require.NoError(t, err)
	defer resp.Body.Close()
	var page comatproto.SyncListRepos_Output
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	listed := map[string]*comatproto.SyncListRepos_Repo{}
	for _, r := range page.Repos {
		listed[r.Did] = r
	}
	require.Contains(t, listed, d.DID(len(d.Names)-1, 0), "an account of the data set the stream never named")
	for did, st := range statuses {
		if st == "active" {
			require.Contains(t, listed, did)
			continue
		}
		require.NotContains(t, listed, did, "a relay lists its active accounts")
		resp, err := http.Get(srv.URL + "/xrpc/com.atproto.sync.getRepoStatus?did=" + did)
		require.NoError(t, err)
		var status comatproto.SyncGetRepoStatus_Output
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&status))
		resp.Body.Close()
		require.False(t, status.Active, did)
		require.Equal(t, st, *status.Status, did)
	}
}

// The writing accounts' PLC directory names their PDS, which answers from the records the
// stream gave them, and as a taken-down or deleted account's PDS does.
func TestFirehoseAccountsHaveAPDS(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 10, Pairs: 1000, LargestShare: 0.3})
	f, err := NewFirehose(d, 20, 7)
	require.NoError(t, err)
	var initial []string
	for _, a := range f.accts {
		initial = append(initial, a.DID)
	}
	for range 2000 {
		require.NoError(t, f.Next())
	}
	srv := httptest.NewServer(f.Network())
	t.Cleanup(srv.Close)
	get := func(path string, out any) int {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
		return resp.StatusCode
	}
	i := slices.IndexFunc(f.active, func(i int) bool { return len(f.owned[i]) > 0 })
	require.GreaterOrEqual(t, i, 0, "an active account with records")
	i = f.active[i]
	did := f.accts[i].DID
	var doc struct {
		Service []struct{ ServiceEndpoint string } `json:"service"`
	}
	require.Equal(t, http.StatusOK, get("/"+did, &doc))
	require.Equal(t, srv.URL, doc.Service[0].ServiceEndpoint)
	var repo struct{ Collections []string }
	require.Equal(t, http.StatusOK, get("/xrpc/com.atproto.repo.describeRepo?repo="+did, &repo))
	want := map[string]bool{}
	for _, op := range f.owned[i] {
		want[op.Collection] = true
	}
	got := map[string]bool{}
	for _, c := range repo.Collections {
		got[c] = true
	}
	require.Equal(t, want, got, "the collections the stream gave it records in")
	require.NotEmpty(t, f.takendown, "some account is taken down")
	var xerr struct{ Error string }
	require.Equal(t, http.StatusBadRequest, get("/xrpc/com.atproto.repo.listRecords?repo="+f.accts[f.takendown[0]].DID+"&collection="+d.Names[0]+"&limit=1", &xerr))
	require.Equal(t, "RepoTakendown", xerr.Error)
	require.Greater(t, f.next, d.Universe+uint64(len(f.accts)), "some account was deleted and replaced")
	gone := "" // a writing account of the first draw that is no longer one
	for _, did := range initial {
		if !slices.ContainsFunc(f.accts, func(a *fakerelay.Account) bool { return a.DID == did }) {
			gone = did
			break
		}
	}
	require.NotEmpty(t, gone)
	require.Equal(t, http.StatusBadRequest, get("/xrpc/com.atproto.repo.describeRepo?repo="+gone, &xerr))
	require.Equal(t, "RepoNotFound", xerr.Error, "a deleted account")
}

// The stream runs for as long as it is left to: with a handful of accounts, deleted ones are
// replaced by new ones, one taken down always comes back in time, and no account's
// repository outgrows its cap.
func TestFirehoseRunsOnWithFewAccounts(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 5, Pairs: 100, LargestShare: 0.3})
	f, err := NewFirehose(d, 3, 7)
	require.NoError(t, err)
	for i := range 20_000 {
		require.NoError(t, f.Next(), "event %d", i+1)
	}
	require.Greater(t, f.next, d.Universe, "deleted accounts were replaced")
	require.Equal(t, 3, len(f.active)+len(f.takendown))
	for _, recs := range f.owned {
		require.LessOrEqual(t, len(recs), maxRecords)
	}
}
