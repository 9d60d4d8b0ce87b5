package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
)

// gapStatus is the part of /admin/firehose that lists gaps.
type gapStatus struct {
	Cursor int64 `json:"cursor"`
	Gaps   []struct {
		ID          int64   `json:"id"`
		AfterSeq    int64   `json:"after_seq"`
		RepairRunID *int64  `json:"repair_run_id"`
		RepairedAt  *string `json:"repaired_at"`
	} `json:"gaps"`
	Sweeps []struct {
		Reason          string  `json:"reason"`
		AccountsRemoved int64   `json:"accounts_removed"`
		FinishedAt      *string `json:"finished_at"`
	} `json:"sweeps"`
}

func (s *service) gaps() gapStatus {
	s.t.Helper()
	code, body := s.call(http.MethodGet, "/admin/firehose")
	require.Equal(s.t, http.StatusOK, code, string(body))
	var st gapStatus
	require.NoError(s.t, json.Unmarshal(body, &st))
	return st
}

// A backfill from a source that still lists an account deleted before the stream began is
// followed by a sweep of the relay that takes it out. Then a colindex that was down longer
// than the relay keeps events comes back to #info OutdatedCursor: it records the gap in Postgres (a SIGKILL right after does not lose it),
// pages every collection again from its source and sweeps the relay's account list by
// itself, and ends with the index equal to the truth, compared as sets: the adds the gap
// carried are back (a collection first seen in the gap too), so are its removals (a last
// record deleted, re-learned from the PDS; an account deleted, from the relay's list), the
// pair the stream removed before the gap stays out though the source still lists it, and the
// events after the gap are applied.
func TestEndToEndStreamGapIsRecordedAndRepaired(t *testing.T) {
	t.Parallel()
	const post, like, gapped = "app.bsky.feed.post", "app.bsky.feed.like", "app.example.gapped"
	source := testrelay.New()
	t.Cleanup(source.Close)
	relay := fakerelay.New(t)
	backfilled := testrelay.DIDs("", 6)
	source.Append(post, backfilled...)
	source.SetLLMsTxt(testrelay.LexiconList(post))
	network := fakepds.New()
	t.Cleanup(network.Close)
	// Deleted before the stream began: the source lists it for good, the stream never says.
	_, err := relay.AccountStatus(backfilled[5], false, "deleted")
	require.NoError(t, err)
	svc := newService(t, source, "COLINDEX_FIREHOSE_URL="+relay.URL(), "COLINDEX_PLC_URL="+network.PLC.URL,
		"COLINDEX_VERIFY_ALLOW_PRIVATE=true")
	svc.start()
	waitConnected(t, relay)
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	svc.waitIdle(time.Minute)
	svc.waitFor("the sweep after the backfill to finish", func() bool {
		sw := svc.gaps().Sweeps
		return len(sw) == 1 && sw[0].Reason == "backfill" && sw[0].FinishedAt != nil && sw[0].AccountsRemoved == 1
	})
	require.Equal(t, slices.Sorted(slices.Values(backfilled[:5])), svc.listAll(post))

	account := func(i int) *fakerelay.Account {
		a, err := fakerelay.NewAccount(testrelay.DIDs("s", 3)[i])
		require.NoError(t, err)
		return a
	}
	a, b, c := account(0), account(1), account(2)
	commit := func(acct *fakerelay.Account, ops ...fakerelay.Op) int64 {
		seq, err := relay.Commit(acct, ops...)
		require.NoError(t, err)
		return seq
	}
	// Before the outage: a posts, and the last post of a backfilled account is deleted.
	gone, err := fakerelay.NewAccount(backfilled[0])
	require.NoError(t, err)
	commit(gone, fakerelay.Create(post, "p0"))
	commit(a, fakerelay.Create(post, "p1"))
	source.Append(post, a.DID) // the source learns of a's post, and will list it for good
	quits, err := fakerelay.NewAccount(backfilled[1])
	require.NoError(t, err)
	commit(quits, fakerelay.Create(post, "p9"))
	before := commit(gone, fakerelay.Delete(post, "p0"))
	svc.waitSettled(before, 30*time.Second)
	require.NotContains(t, svc.listAll(post), backfilled[0])
	require.Contains(t, svc.listAll(post), a.DID)

	// The outage: b's posts reach the source (which never removes anything, so it still lists
	// backfilled[0]) and the relay, which forgets them before colindex is back.
	require.NoError(t, svc.stop(syscall.SIGTERM))
	commit(b, fakerelay.Create(post, "p2"), fakerelay.Create(gapped, "g1"))
	commit(a, fakerelay.Delete(post, "p1")) // a's last post
	lost, err := relay.AccountStatus(quits.DID, false, "deleted")
	require.NoError(t, err)
	source.Append(post, b.DID)
	source.Append(gapped, b.DID)
	source.SetLLMsTxt(testrelay.LexiconList(post, gapped))
	relay.Trim(lost)
	after := commit(c, fakerelay.Create(like, "l1"))
	// What the accounts' PDSes hold, for the sweep's checks.
	network.AddAccount(gone.DID)
	network.AddAccount(a.DID)
	network.AddAccount(b.DID, post, gapped)
	network.AddAccount(c.DID, like)

	svc.start()
	svc.waitFor("the gap is recorded", func() bool { return len(svc.gaps().Gaps) == 1 })
	_ = svc.stop(syscall.SIGKILL) // killed: its exit error says so
	svc.start()
	var st gapStatus
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st = svc.gaps()
		repaired := len(st.Gaps) > 0
		for _, g := range st.Gaps {
			repaired = repaired && g.RepairedAt != nil
		}
		if repaired && st.Cursor >= after {
			break
		}
		require.True(t, time.Now().Before(deadline), "gap not repaired: %+v\n%s", st, svc.logs.String())
	}
	// Reported again after the kill if the cursor had not moved past it yet: the same gap
	// while its refresh had not started, one of its own after.
	for _, g := range st.Gaps {
		require.Equal(t, before, g.AfterSeq, "the gap begins after the cursor saved before the outage")
		require.NotNil(t, g.RepairRunID)
	}

	truth := map[string][]string{
		post:   append(slices.Clone(backfilled[2:5]), b.DID),
		gapped: {b.DID},
		like:   {c.DID},
	}
	for coll, want := range truth {
		slices.Sort(want)
		require.Equal(t, want, svc.listAll(coll), coll)
	}
	code, body = svc.call(http.MethodGet, "/metrics")
	require.Equal(t, http.StatusOK, code, string(body))
	require.True(t, strings.Contains(string(body), "colindex_firehose_gaps_total"), "the gap metric is served")
}
