package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/colindex/colindex/sdk/goclient"
)

// The admin commands talk to a running server through the generated Go SDK, and nothing else.
// main reads .env first (without overriding the environment), so zlay operators' ZLAY_DOMAIN
// and ZLAY_ADMIN_PASSWORD work as they are, and so does the .env that make run writes.

var adminFlags = []cli.Flag{
	&cli.StringFlag{Name: "url", EnvVars: []string{"COLINDEX_URL", "ZLAY_DOMAIN"}, Value: "http://127.0.0.1:2510",
		Usage: "the server: a bare domain (https) or a full URL"},
	&cli.StringFlag{Name: "password", EnvVars: []string{"COLINDEX_ADMIN_PASSWORD", "ZLAY_ADMIN_PASSWORD", "RELAY_ADMIN_PASSWORD"},
		Usage: "the admin password"},
}

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
		cmd("start", "start a backfill", "[source]", start),
		cmd("full", "print the full status JSON", "", full),
		cmd("cancel", "cancel the running backfill (cursors are kept)", "", simple("cancel")),
		cmd("pause", "pause paging", "", simple("pause")),
		cmd("resume", "resume paging", "", simple("resume")),
		cmd("retry", "restart stopped collections", "", simple("retry")),
		cmd("collection", "one collection's detail", "NSID", oneCollection("collection")),
		cmd("reset", "page one collection again from scratch", "NSID", oneCollection("reset")),
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

type admin struct {
	url    string
	client *goclient.ClientWithResponses
}

func newAdmin(c *cli.Context) (*admin, error) {
	pw := c.String("password")
	if pw == "" {
		return nil, errors.New("no admin password: set COLINDEX_ADMIN_PASSWORD or ZLAY_ADMIN_PASSWORD (environment or .env), or --password")
	}
	url := serverURL(c.String("url"))
	client, err := goclient.NewClientWithResponses(url,
		goclient.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}),
		goclient.WithRequestEditorFn(goclient.BearerAuth(pw)))
	if err != nil {
		return nil, err
	}
	return &admin{url: url, client: client}, nil
}

func (a *admin) unreachable(err error) error {
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
		return fmt.Errorf("%s refused the admin password (401): check COLINDEX_ADMIN_PASSWORD / ZLAY_ADMIN_PASSWORD", a.url)
	case http.StatusConflict:
		return fmt.Errorf("a backfill is already running (409); see `colindex status`")
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

func start(c *cli.Context) error {
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	params := &goclient.StartBackfillParams{}
	if src := c.Args().First(); src != "" {
		params.Source = &src
	}
	r, err := a.client.StartBackfillWithResponse(c.Context, params)
	if err != nil {
		return a.unreachable(err)
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return err
	}
	res := r.JSON200
	fmt.Fprintf(c.App.Writer, "started run %d: %d collections to page (%d discovered, %d new, %d already complete)\n",
		res.RunId, res.Collections, res.Discovered, res.Added, res.AlreadyComplete)
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
	return nil
}

func printSummary(w io.Writer, st *goclient.Status, recent int) {
	state := "idle"
	switch {
	case st.Running && st.Paused:
		state = "paused"
	case st.Running:
		state = "running"
	}
	fmt.Fprintf(w, "backfill %s: %d/%d collections complete, %d in progress, %s DIDs imported\n",
		state, st.Completed, st.Total, st.InProgress, thousands(st.TotalImported))
	if r := st.LastRun; r != nil {
		fmt.Fprintf(w, "last run %d from %s, started %s", r.Id, r.Source, r.StartedAt.Local().Format(time.DateTime))
		if r.FinishedAt != nil {
			fmt.Fprintf(w, ", finished %s", r.FinishedAt.Local().Format(time.DateTime))
		}
		if r.CancelledAt != nil {
			fmt.Fprint(w, " (cancelled)")
		}
		fmt.Fprintln(w)
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
		line := fmt.Sprintf("  %-40s %12s", col.Collection, thousands(col.Imported))
		if col.Error != nil {
			line += "  error: " + *col.Error
		}
		fmt.Fprintln(w, line)
	}
}

// watch shows live bars over collections and DIDs until no backfill job is live.
func watch(c *cli.Context, a *admin) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	st, err := a.status(ctx)
	if err != nil {
		return err
	}
	p := mpb.NewWithContext(ctx, mpb.WithOutput(c.App.Writer), mpb.WithWidth(50), mpb.WithRefreshRate(200*time.Millisecond))
	colls := p.New(int64(st.Total), mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name("collections", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
	expect := c.Int64("expect-dids")
	didsTotal := expect
	if didsTotal <= st.TotalImported {
		didsTotal = 0 // unknown: a counter with a rate, no ETA
	}
	etaOrElapsed := decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace)
	if didsTotal == 0 {
		etaOrElapsed = decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)
	}
	dids := p.New(didsTotal, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name("DIDs", decor.WCSyncSpaceR), decor.CurrentNoUnit("%d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.EwmaSpeed(nil, "%.0f/s", 30, decor.WCSyncSpace), etaOrElapsed))
	colls.SetCurrent(int64(st.Completed))
	dids.SetCurrent(st.TotalImported)

	last := time.Now()
	tick := time.NewTicker(c.Duration("interval"))
	defer tick.Stop()
	for st.Running {
		select {
		case <-ctx.Done():
			colls.Abort(false)
			dids.Abort(false)
			p.Wait()
			return nil
		case <-tick.C:
		}
		if st, err = a.status(ctx); err != nil {
			colls.Abort(false)
			dids.Abort(false)
			p.Wait()
			return err
		}
		now := time.Now()
		colls.SetTotal(int64(st.Total), false)
		colls.SetCurrent(int64(st.Completed))
		if didsTotal == 0 {
			dids.SetTotal(st.TotalImported+1, false) // keep an unknown total open
		}
		dids.EwmaSetCurrent(st.TotalImported, now.Sub(last))
		last = now
	}
	colls.SetTotal(int64(st.Total), true)
	dids.SetTotal(st.TotalImported, true)
	p.Wait()
	printSummary(c.App.Writer, st, c.Int("recent"))
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
