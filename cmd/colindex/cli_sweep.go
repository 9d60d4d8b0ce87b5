package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/colindex/colindex/sdk/goclient"
)

// sweepCommand is `colindex sweep`: walk the relay's account list and apply every account's
// status as the relay holds it (and, with --revs-after, re-learn the accounts whose repo
// changed since from their PDS).
func sweepCommand(c *cli.Context) error {
	body := goclient.StartSweepInputBody{}
	if r := c.String("relay"); r != "" {
		body.Relay = &r
	}
	if s := c.String("revs-after"); s != "" {
		t, err := parseSince(s, time.Now())
		if err != nil {
			return err
		}
		body.RevsAfter = &t
	}
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	r, err := a.client.StartAccountSweepWithResponse(c.Context, body)
	if err != nil {
		return a.unreachable(err)
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, r.Body)
	}
	if r.JSON200 == nil {
		return fmt.Errorf("%s answered something that is not a sweep", a.url)
	}
	_, err = fmt.Fprintf(c.App.Writer, "account sweep %d of %s started; colindex firehose shows how far it is\n", r.JSON200.ID, r.JSON200.Relay)
	return err
}

// parseSince reads a time as RFC 3339 or as a duration back from now ("6h").
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--revs-after %q: a time (RFC 3339, 2026-12-07T10:00:00Z) or how long ago (6h)", s)
}

// sweepWhy says why a sweep began, beside its number (an operator's says nothing).
var sweepWhy = map[goclient.SweepReason]string{
	goclient.SweepReasonBackfill: " (after the backfill)",
	goclient.SweepReasonGap:      " (a stream gap's)",
}

// sweepsNote says how far each unfinished sweep is, and which finished ones gave up checks:
// a line each.
func sweepsNote(sweeps []goclient.Sweep) []string {
	var parts []string
	for _, s := range sweeps {
		if s.FinishedAt != nil {
			if s.ChecksGivenUp > 0 {
				parts = append(parts, fmt.Sprintf("sweep %d%s finished with %s given up (River UI keeps them, with their errors)",
					s.ID, sweepWhy[s.Reason], count(s.ChecksGivenUp, "check")))
			}
			continue
		}
		state := "walking the relay's accounts"
		switch {
		case s.UnlistedAt != nil:
			state = "waiting for its checks"
		case s.WalkedAt != nil:
			state = fmt.Sprintf("asking about the accounts the relay did not list (%s so far)", thousands(s.UnlistedAsked))
		}
		part := fmt.Sprintf("sweep %d%s %s: %s read, %s, %s removed, %s queued", s.ID, sweepWhy[s.Reason], state,
			count(s.Repos, "account"), count(s.StatusesChanged, "status change"), count(s.AccountsRemoved, "account"),
			count(s.ChecksQueued, "check"))
		if s.LastError != nil && *s.LastError != "" {
			part += " (last error: " + *s.LastError + ")"
		}
		parts = append(parts, part)
	}
	return parts
}
