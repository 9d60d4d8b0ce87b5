package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/colindex/colindex/sdk/goclient"
)

// printSummary is `colindex status`: one line on the state, the last run, and the most
// recently active incomplete collections.
func printSummary(w io.Writer, st *goclient.Status, recent int) {
	fmt.Fprintln(w, summaryLine(st))
	if r := st.LastRun; r != nil {
		fmt.Fprintf(w, "last run %d from %s, started %s", r.ID, r.Source, r.StartedAt.Local().Format(time.DateTime))
		if r.FinishedAt != nil {
			fmt.Fprintf(w, ", finished %s", r.FinishedAt.Local().Format(time.DateTime))
		}
		if r.CancelledAt != nil {
			fmt.Fprint(w, " (cancelled)")
		}
		fmt.Fprintln(w)
	}
	if line := sourcesLine(st); line != "" {
		fmt.Fprintln(w, line)
	}
	var incomplete []goclient.CollectionStatus
	for _, col := range st.Collections {
		if !col.Completed {
			incomplete = append(incomplete, col)
		}
	}
	// Most recently active first, then the largest.
	slices.SortFunc(incomplete, func(x, y goclient.CollectionStatus) int {
		if tx, ty := at(x.LastPageAt), at(y.LastPageAt); !tx.Equal(ty) {
			return ty.Compare(tx)
		}
		return int(y.Imported - x.Imported)
	})
	if len(incomplete) > recent {
		incomplete = incomplete[:recent]
	}
	if len(incomplete) > 0 {
		fmt.Fprintln(w, "recent incomplete collections:")
	}
	for _, col := range incomplete {
		line := fmt.Sprintf("  %-40s %12s imported %12s indexed", col.Collection, thousands(col.Imported), thousands(col.Indexed))
		line += fromSource(st, col)
		if col.Error != nil {
			line += "  error: " + *col.Error
		}
		fmt.Fprintln(w, line)
	}
}

// summaryLine says whether anything is live and, if so, what; while idle, what is left and
// the command that continues it.
func summaryLine(st *goclient.Status) string {
	done := fmt.Sprintf("%s/%s complete", thousands(st.Completed), count(st.Total, "collection"))
	dids := count(st.TotalImported, "DID") + " imported"
	incomplete := st.Total - st.Completed
	if st.Running {
		state := "running"
		if st.Paused {
			state = "paused"
		}
		if live := liveOutsideRun(st); live != "" {
			state += " (" + live + ")"
		}
		return fmt.Sprintf("backfill %s: %s, %s in progress, %s", state, done, thousands(incomplete), dids)
	}
	var notes []string
	cancelled := st.LastRun != nil && st.LastRun.CancelledAt != nil
	if cancelled {
		notes = append(notes, "last run cancelled")
	}
	if st.Paused {
		notes = append(notes, "paging paused: `colindex resume`")
	}
	line := "backfill idle"
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	line += ": " + done
	if incomplete == 0 {
		return line + ", " + dids
	}
	line += fmt.Sprintf(", %s incomplete, %s", thousands(incomplete), dids)
	if cancelled || st.LastRun == nil {
		return line + " — `colindex start` resumes it"
	}
	// The last run ended by itself: its incomplete collections stopped (retries ran out, or a
	// source refused them).
	return line + " — `colindex retry` pages them again"
}

// liveOutsideRun names what is live while the server reports running but no run is (the
// last run finished or was cancelled): a reset, or chains a reset or retry started. It is ""
// while a run is live.
func liveOutsideRun(st *goclient.Status) string {
	if r := st.LastRun; r != nil && r.FinishedAt == nil && r.CancelledAt == nil {
		return ""
	}
	var resetting, reopened []string
	incomplete := 0
	for _, c := range st.Collections {
		switch {
		case c.Resetting != nil && *c.Resetting:
			resetting = append(resetting, c.Collection)
		case !c.Completed:
			incomplete++
			if c.ResetRemoved != nil {
				reopened = append(reopened, c.Collection)
			}
		}
	}
	switch {
	case len(resetting) == 1:
		return "a reset of " + resetting[0] + ", not a run"
	case len(resetting) > 1:
		return fmt.Sprintf("resets of %d collections, not a run", len(resetting))
	case len(reopened) == 1 && incomplete == 1:
		return "paging " + reopened[0] + " again after its reset, not a run"
	}
	// A retry, or the cancelled run's page jobs still stopping: the status cannot tell which.
	return "no run live: page jobs of a retry or reset, or cancelled ones still stopping"
}

// count is "1 collection", "2 collections", "1,000 DIDs".
func count(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return thousands(n) + " " + noun + "s"
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func at(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// gapsLine is `colindex status`'s line on the stream's open gaps, from /_health: empty when
// there are none (or no stream).
func gapsLine(h *goclient.HealthOutput) string {
	if h == nil || h.Firehose == nil || h.Firehose.GapsOpen == 0 {
		return ""
	}
	if h.Firehose.GapsOpen < 0 {
		return "stream gaps: could not be counted (see colindex firehose)"
	}
	return fmt.Sprintf("stream gaps: %s, so what changed in them may be missing or stale until their refresh and account sweep finish (colindex firehose)",
		count(h.Firehose.GapsOpen, "open gap"))
}

// replicaLine is `colindex status`'s line on replica mode (docs/SCALING.md), from /_health:
// empty for a standalone colindex; for a replica, whether it takes readers yet and, if not,
// what it waits for.
func replicaLine(h *goclient.HealthOutput) string {
	if h == nil || h.ReplicaOf == nil || *h.ReplicaOf == "" {
		return ""
	}
	line := "replica of " + *h.ReplicaOf + ": "
	if h.Ready {
		return line + "ready (the copy is complete and the stream caught up; /_health answers 200)"
	}
	var waits []string
	if h.Backfill != goclient.Complete {
		waits = append(waits, "the copy is "+string(h.Backfill))
	}
	switch f := h.Firehose; {
	case f == nil:
	case !f.Following:
		waits = append(waits, "another process follows the stream")
	case !f.Connected:
		waits = append(waits, "the stream is not connected")
	case !f.CaughtUp:
		waits = append(waits, "the stream is catching up")
	}
	if h.Status == goclient.HealthOutputStatusError {
		waits = append(waits, "a part does not answer (postgres "+string(h.Postgres)+", index "+string(h.Index)+")")
	}
	if len(waits) == 0 {
		waits = append(waits, "starting")
	}
	return line + "not ready, /_health answers 503: " + strings.Join(waits, "; ")
}
