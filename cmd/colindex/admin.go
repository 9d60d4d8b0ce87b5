package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/colindex/colindex/sdk/goclient"
)

// The admin commands talk to a running server through the generated Go SDK, and nothing else.
// main reads .env first (without overriding the environment), so zlay operators' ZLAY_DOMAIN
// and ZLAY_ADMIN_PASSWORD work as they are, and so does the .env that make run writes.

// passwordVars are the variables the admin password is read from, first set wins.
var passwordVars = []string{"COLINDEX_ADMIN_PASSWORD", "ZLAY_ADMIN_PASSWORD", "RELAY_ADMIN_PASSWORD"}

var adminFlags = []cli.Flag{
	// No Value: an unset URL is derived from COLINDEX_LISTEN, the server's own setting.
	&cli.StringFlag{Name: "url", EnvVars: []string{"COLINDEX_URL", "ZLAY_DOMAIN"},
		Usage: "the server: a bare domain (https) or a full URL (default: from COLINDEX_LISTEN, else " + defaultURL + ")"},
	&cli.StringFlag{Name: "password", EnvVars: passwordVars, Usage: "the admin password"},
}

// defaultURL is where serve listens when COLINDEX_LISTEN is not set (its --listen :2510).
const defaultURL = "http://127.0.0.1:2510"

func adminCommands() []*cli.Command {
	cmd := func(name, usage, args string, action cli.ActionFunc, flags ...cli.Flag) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, ArgsUsage: args, Action: action,
			Flags: append(slices.Clone(adminFlags), flags...)}
	}
	return []*cli.Command{
		cmd("status", "summary and the most recent incomplete collections", "", status,
			&cli.BoolFlag{Name: "watch", Usage: "live progress bars until the backfill ends"},
			&cli.DurationFlag{Name: "interval", Value: 2 * time.Second, Usage: "refresh interval with --watch"},
			&cli.Int64Flag{Name: "expect-dids", Usage: "DIDs the backfill will import, for an ETA (bsky.network: about 61000000)"},
			&cli.IntFlag{Name: "recent", Value: 10, Usage: "incomplete collections to list"}),
		cmd("start", "start a backfill", "[source]", start,
			&cli.BoolFlag{Name: "refresh", Usage: "page every collection again from the beginning, completed ones too (repairs the stream's open gaps)"}),
		cmd("full", "print the full status JSON", "", full),
		cmd("cancel", "cancel the running backfill (cursors are kept)", "", simple("cancel")),
		cmd("pause", "pause paging", "", simple("pause")),
		cmd("resume", "resume paging", "", simple("resume")),
		cmd("retry", "restart stopped collections", "", simple("retry")),
		cmd("collection", "one collection's detail", "NSID", oneCollection("collection")),
		cmd("reset", "page one collection again from scratch", "NSID", oneCollection("reset")),
		cmd("move-source", "bind every collection (or each --collection) to another source, keeping cursors or --restart", "SOURCE", moveSource, moveSourceFlags...),
		{Name: "wait", Usage: "wait until the server answers (for scripts after `make run &`)", Action: waitCommand,
			Flags: []cli.Flag{adminFlags[0], &cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up after this"}}},
		cmd("firehose", "where the relay's stream stands: cursor, lag, counters; then a line each for its open gaps, sweeps and last error", "", firehoseCommand,
			&cli.BoolFlag{Name: "json", Usage: "print the JSON answer"}),
		cmd("firehose-cursor", "move the stream's cursor: back to replay, or live after a relay's FutureCursor", "SEQ|live", firehoseCursorCommand,
			&cli.BoolFlag{Name: "json", Usage: "print the JSON answer"}),
		cmd("sweep", "walk the relay's account list: remove deleted accounts, hide inactive ones, list active ones again", "", sweepCommand,
			&cli.StringFlag{Name: "relay", Usage: "the relay to sweep (default: the one the firehose follows)"},
			&cli.StringFlag{Name: "revs-after", Usage: "also re-learn from their PDS the accounts whose repo changed since (RFC 3339, or how long ago: 6h)"},
			&cli.BoolFlag{Name: "json", Usage: "print the JSON answer"}),
	}
}

// serverURL turns a bare domain into https://domain and leaves URLs alone.
func serverURL(raw string) string {
	raw = strings.TrimRight(strings.TrimSpace(raw), "/")
	if !strings.Contains(raw, "://") {
		return "https://" + raw
	}
	return raw
}

// listenURL is the URL that reaches a server started with COLINDEX_LISTEN=listen on this
// machine: an unspecified host (":2600", "0.0.0.0:2600", "[::]:2600") means loopback, any
// other host is called as it is.
func listenURL(listen string) (string, error) {
	if listen == "" {
		return defaultURL, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("COLINDEX_LISTEN=%q is not host:port (%w); set COLINDEX_URL or --url", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// firstSet is the value of the first of vars set to something other than "".
func firstSet(vars ...string) string {
	for _, v := range vars {
		if val := os.Getenv(v); val != "" {
			return val
		}
	}
	return ""
}

type admin struct {
	url string
	// urlFrom says where url came from when it was not given, for the unreachable error.
	urlFrom string
	// passwordFrom names what the password came from, for the 401 error.
	passwordFrom string
	client       *goclient.ClientWithResponses
}

func newAdmin(c *cli.Context) (*admin, error) {
	// urfave/cli stops at the first variable set, even to "": an empty COLINDEX_ADMIN_PASSWORD
	// would hide make run's RELAY_ADMIN_PASSWORD, and an empty COLINDEX_URL ZLAY_DOMAIN.
	pw := cmp.Or(c.String("password"), firstSet(passwordVars...))
	if pw == "" {
		return nil, errors.New("no admin password: set " + strings.Join(passwordVars, ", ") +
			" (environment or .env; make run writes RELAY_ADMIN_PASSWORD), or --password")
	}
	a := &admin{passwordFrom: "--password"}
	for _, v := range passwordVars {
		if val := os.Getenv(v); val != "" {
			if val == pw {
				a.passwordFrom = v
			}
			break // the first variable set is the one taken, unless --password overrode it
		}
	}
	if raw := cmp.Or(c.String("url"), firstSet("COLINDEX_URL", "ZLAY_DOMAIN")); raw != "" {
		a.url = serverURL(raw)
	} else {
		listen := os.Getenv("COLINDEX_LISTEN")
		url, err := listenURL(listen)
		if err != nil {
			return nil, err
		}
		a.url, a.urlFrom = url, "the default"
		if listen != "" {
			a.urlFrom = "from COLINDEX_LISTEN=" + listen
		}
	}
	client, err := goclient.NewClientWithResponses(a.url,
		goclient.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}),
		goclient.WithRequestEditorFn(goclient.BearerAuth(pw)))
	if err != nil {
		return nil, err
	}
	a.client = client
	return a, nil
}

func (a *admin) unreachable(err error) error {
	if a.urlFrom != "" {
		return fmt.Errorf("cannot reach colindex at %s (%s; COLINDEX_URL or --url names another): %w", a.url, a.urlFrom, err)
	}
	return fmt.Errorf("cannot reach colindex at %s: %w", a.url, err)
}

// checkStatus turns non-2xx answers into errors an operator can act on.
func (a *admin) checkStatus(resp *http.Response, body []byte) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var problem struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &problem)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%s refused the admin password (401), taken from %s: it must be the server's "+
			"RELAY_ADMIN_PASSWORD; the CLI reads %s, first set wins", a.url, a.passwordFrom, strings.Join(passwordVars, ", "))
	case http.StatusConflict:
		// The server says why: a live run, or cancelled page jobs that have not stopped yet.
		why := cmp.Or(problem.Detail, "a backfill is already running")
		return fmt.Errorf("%s (409); see `colindex status`", why)
	}
	if problem.Detail != "" {
		return fmt.Errorf("%s answered %d: %s", a.url, resp.StatusCode, problem.Detail)
	}
	return fmt.Errorf("%s answered %d", a.url, resp.StatusCode)
}

func (a *admin) status(ctx context.Context) (*goclient.Status, error) {
	r, err := a.client.GetBackfillStatusWithResponse(ctx)
	if err != nil {
		return nil, a.unreachable(err)
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// health is /_health, whose body comes with a 503 too (a replica that is not ready).
func (a *admin) health(ctx context.Context) (*goclient.HealthOutput, error) {
	r, err := a.client.GetHealthWithResponse(ctx)
	if err != nil {
		return nil, a.unreachable(err)
	}
	if r.JSON200 != nil {
		return r.JSON200, nil
	}
	if r.JSON503 != nil {
		return r.JSON503, nil
	}
	return nil, a.checkStatus(r.HTTPResponse, r.Body)
}

func start(c *cli.Context) error {
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	params := &goclient.StartBackfillParams{}
	if src := c.Args().First(); src != "" {
		params.Source = &src
	}
	if refresh := c.Bool("refresh"); refresh {
		params.Refresh = &refresh
	}
	r, err := a.client.StartBackfillWithResponse(c.Context, params)
	if err != nil {
		return a.unreachable(err)
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return err
	}
	res := r.JSON200
	fmt.Fprintf(c.App.Writer, "started run %d: %s to page (%d discovered, %d new, %d already complete)\n",
		res.RunID, count(res.Collections, "collection"), res.Discovered, res.Added, res.AlreadyComplete)
	if res.Refreshed != nil {
		var gaps int64
		if res.GapsRepairing != nil {
			gaps = *res.GapsRepairing
		}
		line := "refresh: " + count(*res.Refreshed, "collection") + " paged again from the beginning"
		if gaps > 0 {
			line += "; " + count(gaps, "open gap") + " in the stream repaired once they complete"
		}
		fmt.Fprintln(c.App.Writer, line)
	}
	if res.LexiconListError != nil {
		fmt.Fprintf(c.App.Writer, "warning: lexicon list: %s\n", *res.LexiconListError)
	}
	if res.IndexScanError != nil {
		fmt.Fprintf(c.App.Writer, "warning: index scan: %s\n", *res.IndexScanError)
	}
	return nil
}

func full(c *cli.Context) error {
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	b, err := a.raw(c.Context, a.client.GetBackfillStatus)
	if err != nil {
		return err
	}
	return printJSON(c.App.Writer, b)
}

// simple runs one of the body-less run-control operations and prints its JSON answer.
func simple(op string) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := newAdmin(c)
		if err != nil {
			return err
		}
		call := map[string]rawCall{
			"cancel": a.client.CancelBackfill,
			"pause":  a.client.PauseBackfill,
			"resume": a.client.ResumeBackfill,
			"retry":  a.client.RetryFailedCollections,
		}[op]
		b, err := a.raw(c.Context, call)
		if err != nil {
			return err
		}
		return printJSON(c.App.Writer, b)
	}
}

// oneCollection runs an operation on the collection named by the only argument.
func oneCollection(op string) cli.ActionFunc {
	return func(c *cli.Context) error {
		a, err := newAdmin(c)
		if err != nil {
			return err
		}
		if c.NArg() != 1 {
			return fmt.Errorf("usage: colindex %s NSID", op)
		}
		nsid := c.Args().First()
		call := map[string]rawCall{
			"collection": func(ctx context.Context, e ...goclient.RequestEditorFn) (*http.Response, error) {
				return a.client.GetCollection(ctx, nsid, e...)
			},
			"reset": func(ctx context.Context, e ...goclient.RequestEditorFn) (*http.Response, error) {
				return a.client.ResetCollection(ctx, nsid, e...)
			},
		}[op]
		b, err := a.raw(c.Context, call)
		if err != nil {
			return err
		}
		return printJSON(c.App.Writer, b)
	}
}

// rawCall is a generated SDK method without typed decoding, for commands that print JSON.
type rawCall func(context.Context, ...goclient.RequestEditorFn) (*http.Response, error)

func (a *admin) raw(ctx context.Context, call rawCall) ([]byte, error) {
	resp, err := call(ctx)
	if err != nil {
		return nil, a.unreachable(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read answer from %s: %w", a.url, err)
	}
	return b, a.checkStatus(resp, b)
}

func status(c *cli.Context) error {
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	if c.Bool("watch") {
		return watch(c, a)
	}
	st, err := a.status(c.Context)
	if err != nil {
		return err
	}
	printSummary(c.App.Writer, st, c.Int("recent"))
	return printReplica(c, a)
}

// printReplica adds the lines the summary takes from /_health: the stream's open gaps, and
// replica mode's line when this colindex is a replica.
func printReplica(c *cli.Context, a *admin) error {
	h, err := a.health(c.Context)
	if err != nil {
		return err
	}
	for _, line := range []string{gapsLine(h), replicaLine(h)} {
		if line != "" {
			fmt.Fprintln(c.App.Writer, line)
		}
	}
	return nil
}

func printJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("server answered something that is not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := out.WriteTo(w)
	return err
}
