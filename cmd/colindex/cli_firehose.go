package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/sdk/goclient"
)

// firehoseStatus reads the stream follower's state. A server from before the stream has no
// such route: nil, and no error, so status --watch works against it too.
func (a *admin) firehoseStatus(ctx context.Context) (*goclient.FirehoseStatus, error) {
	r, err := a.client.GetFirehoseStatusWithResponse(ctx)
	if err != nil {
		return nil, a.unreachable(err)
	}
	if r.StatusCode() == http.StatusNotFound {
		return nil, nil
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// firehoseText says where the stream stands: a line for the stream, then one, indented, for
// its open gaps, for each sweep worth naming, and for its last error.
func firehoseText(fh *goclient.FirehoseStatus) string {
	const disabled = "firehose: disabled (COLINDEX_FIREHOSE_URL is empty)"
	switch {
	case fh == nil:
		return disabled
	case !fh.Enabled:
		return strings.Join(append([]string{disabled}, sweepsNote(fh.Sweeps)...), "\n  ") // a sweep of a relay named by hand
	case !fh.Following:
		return fmt.Sprintf("firehose: %s is followed by another colindex process on this database (this one waits to take over)", fh.URL)
	}
	state := "connected"
	if !fh.Connected {
		state = "not connected"
	}
	cursor := "no cursor yet"
	if fh.Cursor >= 0 {
		cursor = "cursor " + thousands(fh.Cursor)
	}
	line := fmt.Sprintf("firehose: %s, %s, %s, lag %s; %s (%s), %s removed, %s removed (last record deleted), %s undecided, %s",
		fh.URL, state, cursor, (time.Duration(fh.LagSeconds * float64(time.Second))).Round(time.Millisecond),
		count(fh.EventsTotal, "event"), count(fh.CommitsTotal, "commit"), count(fh.AccountsRemoved, "account"),
		count(fh.PairsRemoved, "pair"), thousands(fh.RemovalsUndecided), count(fh.Reconnects, "reconnect"))
	lines := []string{line}
	if g := gapsNote(fh.Gaps); g != "" {
		lines = append(lines, g)
	}
	lines = append(lines, sweepsNote(fh.Sweeps)...)
	if fh.LastError != "" {
		lines = append(lines, "last error: "+fh.LastError)
	}
	return strings.Join(lines, "\n  ")
}

// gapsNote says what the open gaps in the stream are and where their repair stands; "" when
// none is open.
func gapsNote(gaps []goclient.Gap) string {
	var open []goclient.Gap
	for _, g := range gaps {
		if g.RepairedAt == nil {
			open = append(open, g)
		}
	}
	if len(open) == 0 {
		return ""
	}
	oldest := open[len(open)-1] // newest first
	repair := "repair waiting for a refresh run and its account sweep"
	if oldest.RepairRunID != nil {
		repair = fmt.Sprintf("repair: refresh run %d and an account sweep", *oldest.RepairRunID)
	}
	return fmt.Sprintf("%s in the stream (events after seq %s missed, %s; %s): what changed then may be missing or stale",
		count(int64(len(open)), "open gap"), thousands(oldest.AfterSeq), oldest.DetectedAt.UTC().Format(time.RFC3339), repair)
}

// firehoseCommand prints the stream follower's state (firehoseText), or the JSON with --json.
func firehoseCommand(c *cli.Context) error {
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		b, err := a.raw(c.Context, a.client.GetFirehoseStatus)
		if err != nil {
			return err
		}
		return printJSON(c.App.Writer, b)
	}
	fh, err := a.firehoseStatus(c.Context)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, firehoseText(fh))
	return err
}

const firehoseCursorUsage = "usage: colindex firehose-cursor SEQ|live [--json]"

// firehoseCursorCommand is `colindex firehose-cursor SEQ|live`: move the stream's durable
// cursor, the way out of a relay's FutureCursor, or a rewind that replays events.
func firehoseCursorCommand(c *cli.Context) error {
	// urfave/cli stops reading flags at the first argument, and the usage puts --json after it.
	asJSON := c.Bool("json")
	var args []string
	for _, a := range c.Args().Slice() {
		if a == "--json" || a == "-json" {
			asJSON = true
			continue
		}
		args = append(args, a)
	}
	if len(args) != 1 || args[0] == "" {
		return errors.New(firehoseCursorUsage)
	}
	arg := args[0]
	seq := int64(firehose.LiveTail)
	if arg != "live" {
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a seq (a whole number ≥ 0) nor live; %s", arg, firehoseCursorUsage)
		}
		seq = n
	}
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	r, err := a.client.MoveFirehoseCursorWithResponse(c.Context, goclient.MoveCursorInputBody{Cursor: seq})
	if err != nil {
		return a.unreachable(err)
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return err
	}
	if asJSON {
		return printJSON(c.App.Writer, r.Body)
	}
	if r.JSON200 == nil {
		return fmt.Errorf("%s answered something that is not a moved cursor", a.url)
	}
	_, err = fmt.Fprintln(c.App.Writer, movedCursorLine(r.JSON200))
	return err
}

// movedCursorLine says what a move did and what it means.
func movedCursorLine(m *goclient.MovedCursor) string {
	from := "none saved"
	switch {
	case m.Previous == nil:
	case *m.Previous < 0:
		from = "the live tail"
	default:
		from = strconv.FormatInt(*m.Previous, 10)
	}
	gap := ""
	if m.GapID != nil {
		gap = fmt.Sprintf("; gap %d recorded for the events skipped, repaired by a refresh run (colindex firehose shows it)", *m.GapID)
	}
	switch {
	case m.Cursor < 0:
		return fmt.Sprintf("firehose cursor of %s moved from %s to the live tail: events before it are skipped%s", m.URL, from, gap)
	case m.Previous != nil && m.Cursor < *m.Previous:
		return fmt.Sprintf("firehose cursor of %s moved back from %s to %d: the events after it are replayed, which changes nothing twice", m.URL, from, m.Cursor)
	default:
		return fmt.Sprintf("firehose cursor of %s moved from %s to %d: the stream resumes after it%s", m.URL, from, m.Cursor, gap)
	}
}
