package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/colindex/colindex/sdk/goclient"
)

// These tests need no server: they pin the CLI's pure parts (URL derivation, wording,
// rendering) on statuses built by hand, including states that are racy to reach live.

func TestCLIListenURL(t *testing.T) {
	t.Parallel()
	for listen, want := range map[string]string{
		"":               "http://127.0.0.1:2510", // serve's own default, --listen :2510
		":2600":          "http://127.0.0.1:2600",
		"0.0.0.0:2600":   "http://127.0.0.1:2600",
		"[::]:2600":      "http://[::1]:2600",
		"127.0.0.5:2600": "http://127.0.0.5:2600",
		"[::1]:2600":     "http://[::1]:2600",
		"localhost:2600": "http://localhost:2600",
	} {
		t.Run(listen, func(t *testing.T) {
			t.Parallel()
			got, err := listenURL(listen)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
	t.Run("not host:port", func(t *testing.T) {
		t.Parallel()
		_, err := listenURL("2600")
		require.ErrorContains(t, err, `COLINDEX_LISTEN="2600" is not host:port`)
	})
}

func ptr[T any](v T) *T { return &v }

func TestCLISummaryWording(t *testing.T) {
	t.Parallel()
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	finished := started.Add(time.Hour)
	six := func(incomplete ...goclient.CollectionStatus) []goclient.CollectionStatus {
		cols := []goclient.CollectionStatus{}
		for i := len(incomplete); i < 6; i++ {
			cols = append(cols, goclient.CollectionStatus{Collection: "com.example.done", Completed: true, Imported: 400})
		}
		return append(cols, incomplete...)
	}
	for _, tc := range []struct {
		name string
		st   goclient.Status
		want string
	}{{
		name: "cancelled run: idle, what is left, and how to go on",
		st: goclient.Status{Total: 6, Completed: 5, InProgress: 1, TotalImported: 2400,
			Collections: six(goclient.CollectionStatus{Collection: "com.example.a"}),
			LastRun:     &goclient.RunStatus{ID: 3, StartedAt: started, CancelledAt: &finished}},
		want: "backfill idle (last run cancelled): 5/6 collections complete, 1 incomplete, 2,400 DIDs imported — `colindex start` resumes it",
	}, {
		name: "finished run with stopped collections: retry",
		st: goclient.Status{Total: 6, Completed: 4, InProgress: 2, TotalImported: 2000,
			LastRun: &goclient.RunStatus{ID: 3, StartedAt: started, FinishedAt: &finished}},
		want: "backfill idle: 4/6 collections complete, 2 incomplete, 2,000 DIDs imported — `colindex retry` pages them again",
	}, {
		name: "all complete; singular nouns",
		st: goclient.Status{Total: 1, Completed: 1, TotalImported: 1,
			LastRun: &goclient.RunStatus{ID: 1, StartedAt: started, FinishedAt: &finished}},
		want: "backfill idle: 1/1 collection complete, 1 DID imported",
	}, {
		name: "a live run",
		st: goclient.Status{Running: true, Total: 6, Completed: 2, InProgress: 4, TotalImported: 1234567,
			LastRun: &goclient.RunStatus{ID: 3, StartedAt: started}},
		want: "backfill running: 2/6 collections complete, 4 in progress, 1,234,567 DIDs imported",
	}, {
		name: "a paused run",
		st: goclient.Status{Running: true, Paused: true, Total: 6, Completed: 2, TotalImported: 10,
			LastRun: &goclient.RunStatus{ID: 3, StartedAt: started}},
		want: "backfill paused: 2/6 collections complete, 4 in progress, 10 DIDs imported",
	}, {
		name: "a reset beside a finished run says it is a reset",
		st: goclient.Status{Running: true, Total: 6, Completed: 6, TotalImported: 2000,
			Collections: six(goclient.CollectionStatus{Collection: "com.example.b", Completed: true, Resetting: ptr(true), ResetRemoved: ptr(int64(50))}),
			LastRun:     &goclient.RunStatus{ID: 3, StartedAt: started, FinishedAt: &finished}},
		want: "backfill running (a reset of com.example.b, not a run): 6/6 collections complete, 0 in progress, 2,000 DIDs imported",
	}, {
		name: "the reset collection paging again",
		st: goclient.Status{Running: true, Total: 6, Completed: 5, TotalImported: 2000,
			Collections: six(goclient.CollectionStatus{Collection: "com.example.b", ResetRemoved: ptr(int64(200))}),
			LastRun:     &goclient.RunStatus{ID: 3, StartedAt: started, FinishedAt: &finished}},
		want: "backfill running (paging com.example.b again after its reset, not a run): 5/6 collections complete, 1 in progress, 2,000 DIDs imported",
	}, {
		name: "page jobs after a cancelled run",
		st: goclient.Status{Running: true, Total: 6, Completed: 4, TotalImported: 2000,
			Collections: six(goclient.CollectionStatus{Collection: "com.example.a"}, goclient.CollectionStatus{Collection: "com.example.b"}),
			LastRun:     &goclient.RunStatus{ID: 3, StartedAt: started, CancelledAt: &finished}},
		want: "backfill running (no run live: page jobs of a retry or reset, or cancelled ones still stopping): 4/6 collections complete, 2 in progress, 2,000 DIDs imported",
	}, {
		name: "paused while idle: a start would not page",
		st: goclient.Status{Paused: true, Total: 6, Completed: 6, TotalImported: 2000,
			LastRun: &goclient.RunStatus{ID: 3, StartedAt: started, FinishedAt: &finished}},
		want: "backfill idle (paging paused: `colindex resume`): 6/6 collections complete, 2,000 DIDs imported",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, summaryLine(&tc.st))
			var out bytes.Buffer
			printSummary(&out, &tc.st, 10)
			require.True(t, strings.HasPrefix(out.String(), tc.want+"\n"), out.String())
		})
	}
}

func TestCLIConflictPrintsTheServersReason(t *testing.T) {
	t.Parallel()
	a := &admin{url: "http://x"}
	resp := &http.Response{StatusCode: http.StatusConflict}
	// The server's 409 when cancelled page jobs have not stopped yet: not "already running".
	err := a.checkStatus(resp, []byte(`{"status":409,"title":"Conflict","detail":"cancelled page jobs are still running"}`))
	require.EqualError(t, err, "cancelled page jobs are still running (409); see `colindex status`")
	// An answer without a problem body still explains itself.
	err = a.checkStatus(resp, []byte(`not json`))
	require.EqualError(t, err, "a backfill is already running (409); see `colindex status`")
}

func TestCLIWatchLinesWithoutATerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	v := &linesView{w: &out}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	v.update(&goclient.Status{Running: true, Total: 6, Completed: 1, TotalImported: 1000}, t0)
	v.update(&goclient.Status{Running: true, Paused: true, Total: 6, Completed: 2, TotalImported: 3000}, t0.Add(2*time.Second))
	// A reset removed DIDs: the rate is 0, not negative.
	v.update(&goclient.Status{Running: true, Total: 6, Completed: 2, TotalImported: 2500}, t0.Add(4*time.Second))
	v.end(nil)
	require.Equal(t, ""+
		"2026-01-02 03:04:05 collections 1/6 complete, 1,000 DIDs\n"+
		"2026-01-02 03:04:07 collections 2/6 complete, 3,000 DIDs, 1,000 DIDs/s, paused\n"+
		"2026-01-02 03:04:09 collections 2/6 complete, 2,500 DIDs, 0 DIDs/s\n", out.String())
}

func TestCLIBarsNeverShowDoneEarly(t *testing.T) {
	t.Parallel()
	require.Equal(t, "99 %", floorPercent(decor.Statistics{Total: 200, Current: 199}), "mpb's Percentage says 100 %")
	require.Equal(t, "100 %", floorPercent(decor.Statistics{Total: 200, Current: 200}))
	require.Equal(t, "0 %", floorPercent(decor.Statistics{}))

	// The fill: a 50-wide bar (48 cells inside the brackets) at 199/200 is 47.76 cells, which
	// mpb rounds to a full bar; rounded down, one cell stays empty ('-').
	fill := func(st decor.Statistics) string {
		var b bytes.Buffer
		require.NoError(t, floorFill(mpb.BarStyle().Build()).Fill(&b, st))
		return b.String()
	}
	almost := fill(decor.Statistics{RequestedWidth: 50, AvailableWidth: 120, Total: 200, Current: 199})
	require.Len(t, almost, 50)
	require.True(t, strings.HasSuffix(almost, "-]"), almost)
	var unrounded bytes.Buffer
	require.NoError(t, mpb.BarStyle().Build().Fill(&unrounded, decor.Statistics{RequestedWidth: 50, AvailableWidth: 120, Total: 200, Current: 199}))
	require.NotContains(t, unrounded.String(), "-", "mpb alone draws 199/200 full; if it stops, floorFill can go")
	require.NotContains(t, fill(decor.Statistics{RequestedWidth: 50, AvailableWidth: 120, Total: 200, Current: 200, Completed: true}), "-")

	// The whole view, rendered into a buffer (WithAutoRefresh: mpb draws nothing to a
	// non-terminal otherwise): 199/200 paused reads 99 % and paused, never 100 %.
	var out logBuffer // mpb renders from its own goroutine
	v := newBarsView(context.Background(), &out, &goclient.Status{}, 0, mpb.WithAutoRefresh())
	v.update(&goclient.Status{Running: true, Paused: true, Total: 200, Completed: 199, TotalImported: 5000}, time.Now())
	v.end(&goclient.Status{Running: false, Total: 200, Completed: 199, TotalImported: 5000})
	require.Contains(t, out.String(), "199 / 200")
	require.Contains(t, out.String(), "99 %")
	require.Contains(t, out.String(), "paused")
	require.NotContains(t, out.String(), "100 %")
}

// `colindex status` says whether a replica takes readers and, if not, what it waits for; a
// standalone colindex gets no line.
func TestReplicaLineSaysWhatTheReplicaWaitsFor(t *testing.T) {
	t.Parallel()
	peer := "http://peer:8080"
	for _, tc := range []struct {
		name string
		h    *goclient.HealthOutput
		want string
	}{{
		name: "standalone",
		h:    &goclient.HealthOutput{Status: goclient.HealthOutputStatusOk, Backfill: goclient.Running},
	}, {
		name: "ready",
		h: &goclient.HealthOutput{ReplicaOf: &peer, Ready: true, Status: goclient.HealthOutputStatusOk, Backfill: goclient.Complete,
			Firehose: &goclient.HealthFirehose{Following: true, Connected: true, CaughtUp: true}},
		want: "replica of http://peer:8080: ready (the copy is complete and the stream caught up; /_health answers 200)",
	}, {
		name: "copying while the stream catches up",
		h: &goclient.HealthOutput{ReplicaOf: &peer, Status: goclient.HealthOutputStatusStarting, Backfill: goclient.Running,
			Firehose: &goclient.HealthFirehose{Following: true, Connected: true}},
		want: "replica of http://peer:8080: not ready, /_health answers 503: the copy is running; the stream is catching up",
	}, {
		name: "copied, stream down",
		h: &goclient.HealthOutput{ReplicaOf: &peer, Status: goclient.HealthOutputStatusStarting, Backfill: goclient.Complete,
			Firehose: &goclient.HealthFirehose{Following: true}},
		want: "replica of http://peer:8080: not ready, /_health answers 503: the stream is not connected",
	}, {
		name: "postgres down",
		h: &goclient.HealthOutput{ReplicaOf: &peer, Status: goclient.HealthOutputStatusError, Backfill: goclient.Unknown,
			Postgres: "error", Index: "ok"},
		want: "replica of http://peer:8080: not ready, /_health answers 503: the copy is unknown; a part does not answer (postgres error, index ok)",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, replicaLine(tc.h))
		})
	}
}

// status names open gaps in the stream, and says nothing when there are none.
func TestGapsLineNamesOpenGaps(t *testing.T) {
	t.Parallel()
	with := func(n int64) *goclient.HealthOutput {
		return &goclient.HealthOutput{Firehose: &goclient.HealthFirehose{GapsOpen: n}}
	}
	require.Empty(t, gapsLine(nil))
	require.Empty(t, gapsLine(&goclient.HealthOutput{}), "no stream")
	require.Empty(t, gapsLine(with(0)))
	require.Equal(t, "stream gaps: 2 open gaps, so what changed in them may be missing or stale until their refresh and account sweep finish (colindex firehose)", gapsLine(with(2)))
	require.Contains(t, gapsLine(with(-1)), "could not be counted")
}

// colindex firehose names the open gaps, from the oldest, and where its repair stands; repaired
// gaps say nothing.
func TestGapsNoteNamesTheOpenGaps(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	run := int64(4)
	require.Empty(t, gapsNote(nil))
	require.Empty(t, gapsNote([]goclient.Gap{{AfterSeq: 9, RepairedAt: &at}}))
	gaps := []goclient.Gap{
		{AfterSeq: 2000, DetectedAt: at.Add(time.Hour)},
		{AfterSeq: 1500, DetectedAt: at, RepairRunID: &run},
		{AfterSeq: 900, DetectedAt: at.Add(-time.Hour), RepairedAt: &at},
	}
	require.Equal(t, "2 open gaps in the stream (events after seq 1,500 missed, 2026-12-07T12:00:00Z; repair: refresh run 4 and an account sweep): what changed then may be missing or stale",
		gapsNote(gaps))
	require.Contains(t, gapsNote(gaps[:1]), "repair waiting for a refresh run")
}

// colindex firehose says how far each unfinished sweep is, and of finished ones only the
// checks they gave up: a line each.
func TestSweepsNoteSaysHowFarTheSweepsAre(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	failed := "listRepos: relay answered HTTP 502"
	require.Empty(t, sweepsNote(nil))
	require.Empty(t, sweepsNote([]goclient.Sweep{{ID: 1, WalkedAt: &at, FinishedAt: &at}}))
	require.Equal(t, []string{
		"sweep 4 walking the relay's accounts: 12,000 accounts read, 1 status change, 0 accounts removed, 40 checks queued (last error: " + failed + ")",
		"sweep 3 (after the backfill) asking about the accounts the relay did not list (2,500 so far): 7 accounts read, 2 status changes, 1 account removed, 0 checks queued",
		"sweep 2 (a stream gap's) waiting for its checks: 1 account read, 0 status changes, 0 accounts removed, 1 check queued",
	}, sweepsNote([]goclient.Sweep{
		{ID: 4, Repos: 12000, StatusesChanged: 1, ChecksQueued: 40, LastError: &failed},
		{ID: 3, Reason: goclient.SweepReasonBackfill, Repos: 7, StatusesChanged: 2, AccountsRemoved: 1, UnlistedAsked: 2500, WalkedAt: &at},
		{ID: 2, Reason: goclient.SweepReasonGap, Repos: 1, ChecksQueued: 1, WalkedAt: &at, UnlistedAt: &at},
	}))
	require.Equal(t, []string{"sweep 5 (after the backfill) finished with 2 checks given up (River UI keeps them, with their errors)"},
		sweepsNote([]goclient.Sweep{
			{ID: 5, Reason: goclient.SweepReasonBackfill, ChecksQueued: 9, ChecksGivenUp: 2, WalkedAt: &at, UnlistedAt: &at, FinishedAt: &at},
			{ID: 1, ChecksQueued: 9, WalkedAt: &at, UnlistedAt: &at, FinishedAt: &at},
		}))
}

// --revs-after takes a time or how long ago.
func TestParseSinceTakesATimeOrADuration(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	got, err := parseSince("2026-12-07T10:00:00Z", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-2*time.Hour), got)
	got, err = parseSince("6h", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-6*time.Hour), got)
	_, err = parseSince("yesterday", now)
	require.ErrorContains(t, err, "RFC 3339")
	_, err = parseSince("-1h", now)
	require.Error(t, err, "not in the future")
}

// colindex firehose shows an unfinished sweep even when the firehose is disabled: a sweep of a
// relay named by hand runs without it. Followed, it gives the stream a line, then one each
// to its gaps, its sweeps and its last error.
func TestFirehoseTextShowsSweepsWithoutAFirehose(t *testing.T) {
	t.Parallel()
	failed := "listRepos: http://127.0.0.1:2600 answered HTTP 404"
	require.Equal(t, "firehose: disabled (COLINDEX_FIREHOSE_URL is empty)", firehoseText(&goclient.FirehoseStatus{}))
	require.Equal(t, "firehose: disabled (COLINDEX_FIREHOSE_URL is empty)\n  sweep 1 walking the relay's accounts: 0 accounts read, "+
		"0 status changes, 0 accounts removed, 0 checks queued (last error: "+failed+")",
		firehoseText(&goclient.FirehoseStatus{Sweeps: []goclient.Sweep{{ID: 1, LastError: &failed}}}))
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	require.Equal(t, "firehose: ws://relay, connected, cursor 7, lag 0s; 3 events (2 commits), 0 accounts removed, 0 pairs removed (last record deleted), 0 undecided, 0 reconnects\n"+
		"  1 open gap in the stream (events after seq 5 missed, 2026-12-07T12:00:00Z; repair waiting for a refresh run and its account sweep): what changed then may be missing or stale\n"+
		"  sweep 2 (a stream gap's) walking the relay's accounts: 0 accounts read, 0 status changes, 0 accounts removed, 0 checks queued\n"+
		"  last error: relay down",
		firehoseText(&goclient.FirehoseStatus{Enabled: true, Following: true, Connected: true, URL: "ws://relay", Cursor: 7,
			EventsTotal: 3, CommitsTotal: 2, LastError: "relay down",
			Gaps:   []goclient.Gap{{AfterSeq: 5, DetectedAt: at}},
			Sweeps: []goclient.Sweep{{ID: 2, Reason: goclient.SweepReasonGap}}}))
}
