package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

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

// firehoseLine says in one line where the stream stands.
func firehoseLine(fh *goclient.FirehoseStatus) string {
	if fh == nil || !fh.Enabled {
		return "firehose: disabled (COLINDEX_FIREHOSE_URL is empty)"
	}
	if !fh.Following {
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
	if fh.LastError != "" {
		line += "; last error: " + fh.LastError
	}
	return line
}

// firehoseCommand prints the stream follower's state: one line, or the JSON with --json.
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
	_, err = fmt.Fprintln(c.App.Writer, firehoseLine(fh))
	return err
}
