package benchrelay

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	"github.com/bluesky-social/indigo/events/schedulers/sequential"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// The local firehose carries what a follower must handle, as real frames read by indigo's
// consumer: creates across the data set's collections, record deletes, takedowns, returns and
// account deletions, by the data set's accounts; its account list knows every account of the
// data set, the active ones in listRepos and every one in getRepoStatus, with the status the
// stream gave it.
func TestFirehoseCarriesEveryKindOfEvent(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 20, Pairs: 2000, LargestShare: 0.3})
	f, err := NewFirehose(d, 40)
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
	cb := &events.RepoStreamCallbacks{
		RepoCommit: func(evt *comatproto.SyncSubscribeRepos_Commit) error {
			for _, op := range evt.Ops {
				kinds[op.Action]++
				collections[strings.SplitN(op.Path, "/", 2)[0]] = true
			}
			return done(evt.Seq, &last, cancel)
		},
		RepoAccount: func(evt *comatproto.SyncSubscribeRepos_Account) error {
			st := "active"
			if !evt.Active {
				st = *evt.Status
			}
			kinds[st]++
			statuses[evt.Did] = st
			return done(evt.Seq, &last, cancel)
		},
	}
	sched := sequential.NewScheduler("test", cb.EventHandler)
	go func() {
		<-ctx.Done()
		con.Close()
	}()
	_ = events.HandleRepoStream(ctx, con, sched, slog.Default())
	require.EqualValues(t, n, last, "every event, in order")
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

// done records seq and ends the stream at the last event.
func done(seq int64, last *int64, cancel context.CancelFunc) error {
	*last = seq
	if seq == 3000 {
		cancel()
	}
	return nil
}
