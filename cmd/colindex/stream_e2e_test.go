package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
)

// The binary follows a relay: creates are served at once (a new collection too), the delete
// of an account's last record of a collection removes the pair, a deleted account leaves
// every listing, a deactivated one is hidden and comes back; the cursor and
// counters show in /admin/firehose and `colindex firehose`; a restart resumes from the
// durable cursor without applying anything twice.
// waitConnected waits (at most 30 s) until a follower has connected to relay: one without a
// cursor starts at the live tail, so events appended before would never reach it.
func waitConnected(t *testing.T, relay *fakerelay.Relay) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); relay.Connections() == 0; time.Sleep(20 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "never connected to the relay")
	}
}

// followingService starts a colindex that follows a fresh fake relay (backfill source: a test
// relay), with extra environment, and waits until it has connected.
func followingService(t *testing.T, extraEnv ...string) (*service, *fakerelay.Relay) {
	t.Helper()
	source := testrelay.New()
	t.Cleanup(source.Close)
	relay := fakerelay.New(t)
	svc := newService(t, source, append([]string{"COLINDEX_FIREHOSE_URL=" + relay.URL()}, extraEnv...)...)
	svc.start()
	waitConnected(t, relay)
	return svc, relay
}

func TestEndToEndFollowsTheFirehose(t *testing.T) {
	t.Parallel()
	svc, relay := followingService(t)
	waitFor := svc.waitFor

	dids := []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "did:plc:cccccccccccccccccccccccc"}
	for i, did := range dids {
		a, err := fakerelay.NewAccount(did)
		require.NoError(t, err)
		_, err = relay.Commit(a, fakerelay.Create("app.example.new", "r1"), fakerelay.Create("app.bsky.feed.post", "p1"))
		require.NoError(t, err)
		if i == 0 {
			_, err = relay.Commit(a, fakerelay.Delete("app.bsky.feed.post", "p1"))
			require.NoError(t, err)
		}
	}
	_, err := relay.AccountStatus(dids[1], false, "deleted")
	require.NoError(t, err)
	_, err = relay.AccountStatus(dids[2], false, "deactivated")
	require.NoError(t, err)
	last := relay.LastSeq()

	type fhStatus struct {
		Enabled, Following, Connected bool
		Cursor                        int64
		CommitsTotal                  int64                                `json:"commits_total"`
		AccountsRemoved               int64                                `json:"accounts_removed"`
		RemovalsByCause               map[string]int64                     `json:"removals_by_cause"`
		VerifyJobs                    struct{ Queued, Done, Failed int64 } `json:"verify_jobs"`
	}
	var fh fhStatus
	waitFor("the cursor reaches the last event", func() bool {
		code, body := svc.call(http.MethodGet, "/admin/firehose")
		require.Equal(t, http.StatusOK, code, string(body))
		require.NoError(t, json.Unmarshal(body, &fh))
		return fh.Cursor >= last
	})
	require.True(t, fh.Enabled && fh.Following && fh.Connected)
	require.EqualValues(t, 4, fh.CommitsTotal)
	require.EqualValues(t, 1, fh.AccountsRemoved)
	require.Equal(t, map[string]int64{"proof": 1, "account_deletion": 2, "pds_check": 0, "sync": 0, "sweep": 0}, fh.RemovalsByCause,
		"the last post's delete, and the deleted account's two pairs")
	require.Zero(t, fh.VerifyJobs.Queued+fh.VerifyJobs.Done+fh.VerifyJobs.Failed, "every delete settled by its proof")
	// The deleted account is gone, the deactivated one hidden, and the delete of the last
	// post took that pair out.
	require.Equal(t, dids[:1], svc.listAll("app.example.new"))
	require.Empty(t, svc.listAll("app.bsky.feed.post"))

	out, err := svc.cli(t, svc.adminEnv(), "firehose")
	require.NoError(t, err, out)
	require.Contains(t, out, "connected, cursor "+thousands(last))
	require.Contains(t, out, "1 account removed")

	// Restart: resumes after the durable cursor, replays nothing, and follows what came since.
	require.NoError(t, svc.stop(syscall.SIGTERM))
	_, err = relay.AccountStatus(dids[2], true, "")
	require.NoError(t, err)
	svc.start()
	waitFor("the reactivated account is listed again", func() bool {
		return slices.Contains(svc.listAll("app.example.new"), dids[2])
	})
	require.Equal(t, []string{dids[0], dids[2]}, svc.listAll("app.example.new"))
	cursors := relay.Cursors()
	require.Equal(t, "", cursors[0], "the first start begins at the live tail")
	require.Equal(t, strconv.FormatInt(last, 10), cursors[len(cursors)-1], "the restart resumes after the durable cursor")
}

// A delete the commit's proof cannot settle (here sent without its blocks) is checked with the
// account's PDS, found through the PLC directory: the PDS lists no record left, so the pair
// goes; for an account whose PDS still lists one, it stays.
func TestEndToEndUnsettledDeleteIsCheckedWithThePDS(t *testing.T) {
	t.Parallel()
	network := fakepds.New()
	t.Cleanup(network.Close)
	svc, relay := followingService(t, "COLINDEX_PLC_URL="+network.PLC.URL, "COLINDEX_VERIFY_ALLOW_PRIVATE=true")
	gone, kept := "did:plc:gggggggggggggggggggggggg", "did:plc:kkkkkkkkkkkkkkkkkkkkkkkk"
	// The accounts exist in the PLC directory and on their PDS before the relay sends their
	// commits: a check that ran first would find no DID, and count as a failed job.
	network.SetRecords(gone, "app.bsky.feed.like", 0)
	network.SetRecords(kept, "app.bsky.feed.like", 1) // the PDS says otherwise: it is kept
	for _, did := range []string{gone, kept} {
		a, err := fakerelay.NewAccount(did)
		require.NoError(t, err)
		_, err = relay.Commit(a, fakerelay.Create("app.bsky.feed.like", "l1"))
		require.NoError(t, err)
		evt, err := a.Commit(fakerelay.Delete("app.bsky.feed.like", "l1"))
		require.NoError(t, err)
		evt.Blocks = nil // no proof
		_, err = relay.Append(&events.XRPCStreamEvent{RepoCommit: evt})
		require.NoError(t, err)
	}

	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		listed := svc.listAll("app.bsky.feed.like")
		if slices.Equal(listed, []string{kept}) && network.Requests(kept) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "listed %v; PDS asked about gone %d, kept %d times\n%s",
			listed, network.Requests(gone), network.Requests(kept), svc.logs.String())
	}
	var fh struct {
		RemovalsUndecided int64                                `json:"removals_undecided"`
		RemovalsByCause   map[string]int64                     `json:"removals_by_cause"`
		VerifyJobs        struct{ Queued, Done, Failed int64 } `json:"verify_jobs"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := svc.call(http.MethodGet, "/admin/firehose")
		require.Equal(t, http.StatusOK, code)
		require.NoError(t, json.Unmarshal(body, &fh))
		if fh.VerifyJobs.Queued == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "verify jobs still queued: %s", body)
	}
	require.EqualValues(t, 2, fh.RemovalsUndecided)
	require.EqualValues(t, 1, fh.RemovalsByCause["pds_check"], "the account whose PDS listed nothing")
	require.Zero(t, fh.RemovalsByCause["proof"])
	require.EqualValues(t, 2, fh.VerifyJobs.Done, "one check per account")
	require.Zero(t, fh.VerifyJobs.Failed)
}
