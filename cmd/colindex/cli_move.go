package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/colindex/colindex/sdk/goclient"
)

// moveSourceFlags are `colindex move-source`'s own flags.
var moveSourceFlags = []cli.Flag{
	&cli.StringSliceFlag{Name: "collection", Usage: "move only this collection (NSID; repeat for more); without it, every collection moves"},
	&cli.BoolFlag{Name: "restart", Usage: "page the moved collections again from the beginning (default: keep their cursors, for a source that shares the old one's cursors)"},
	&cli.BoolFlag{Name: "json", Usage: "print the JSON answer"},
}

// moveSource is `colindex move-source SOURCE [--collection NSID ...] [--restart]`: the way to
// correct a wrong source, since a start never moves a collection.
func moveSource(c *cli.Context) error {
	args, err := parseMoveArgs(c)
	if err != nil {
		return err
	}
	a, err := newAdmin(c)
	if err != nil {
		return err
	}
	body := goclient.MoveSourceRequest{Source: args.source, Cursor: "keep"}
	if args.restart {
		body.Cursor = "restart"
	}
	if len(args.collections) > 0 {
		body.Collections = &args.collections
	} else {
		all := true
		body.All = &all
	}
	r, err := a.client.MoveCollectionsSourceWithResponse(c.Context, body)
	if err != nil {
		return a.unreachable(err)
	}
	if err := a.checkStatus(r.HTTPResponse, r.Body); err != nil {
		return err
	}
	if args.json {
		return printJSON(c.App.Writer, r.Body)
	}
	if r.JSON200 == nil {
		return fmt.Errorf("%s answered something that is not a move result", a.url)
	}
	fmt.Fprintln(c.App.Writer, moveSummary(r.JSON200))
	return nil
}

type moveArgs struct {
	source        string
	collections   []string
	restart, json bool
}

const moveUsage = "usage: colindex move-source SOURCE [--collection NSID ...] [--restart] [--json]"

// parseMoveArgs reads SOURCE and the command's flags, written before or after SOURCE: urfave/cli
// stops reading flags at the first argument, and the usage puts them after it.
func parseMoveArgs(c *cli.Context) (moveArgs, error) {
	args := moveArgs{
		source: c.Args().First(), collections: c.StringSlice("collection"),
		restart: c.Bool("restart"), json: c.Bool("json"),
	}
	if args.source == "" {
		return args, errors.New(moveUsage)
	}
	if tail := c.Args().Tail(); len(tail) > 0 {
		fs := flag.NewFlagSet("move-source", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Func("collection", "", func(v string) error { args.collections = append(args.collections, v); return nil })
		restart, asJSON := fs.Bool("restart", false, ""), fs.Bool("json", false, "")
		if err := fs.Parse(tail); err != nil {
			return args, fmt.Errorf("%w (%s)", err, moveUsage)
		}
		if fs.NArg() > 0 {
			return args, fmt.Errorf("one SOURCE only, not also %q (%s)", fs.Args(), moveUsage)
		}
		args.restart = args.restart || *restart
		args.json = args.json || *asJSON
	}
	return args, nil
}

// moveSummary says what moved, from where, and when each moved collection pages again.
func moveSummary(res *goclient.MoveResult) string {
	if len(res.Moved) == 0 {
		return fmt.Sprintf("nothing moved: %s %s already bound to %s", count(res.Unchanged, "collection"), verb(res.Unchanged, "is", "are"), res.Source)
	}
	from := map[string]int64{}
	for _, m := range res.Moved {
		from[m.From]++
	}
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(from)) {
		parts = append(parts, fmt.Sprintf("%s from %s", thousands(from[s]), s))
	}
	how := "cursors kept"
	if res.Cursor == "restart" {
		how = "paged again from the beginning"
	}
	line := fmt.Sprintf("moved %s to %s (%s): %s", count(int64(len(res.Moved)), "collection"), res.Source, how, strings.Join(parts, ", "))
	var notes []string
	if res.Continuing > 0 {
		notes = append(notes, fmt.Sprintf("%s %s paging from it", thousands(res.Continuing), verb(res.Continuing, "goes on", "go on")))
	}
	if res.Enqueued > 0 {
		notes = append(notes, fmt.Sprintf("%s without a chain %s paging from it", thousands(res.Enqueued), verb(res.Enqueued, "starts", "start")))
	}
	if res.Waiting > 0 {
		notes = append(notes, fmt.Sprintf("%s %s for `colindex start`", thousands(res.Waiting), verb(res.Waiting, "waits", "wait")))
	}
	if res.Unchanged > 0 {
		notes = append(notes, fmt.Sprintf("%s already there", thousands(res.Unchanged)))
	}
	if len(notes) > 0 {
		line += "; " + strings.Join(notes, ", ")
	}
	return line
}

// verb agrees with a count: one for 1, many otherwise.
func verb(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sourcesLine names the sources the collections are bound to, with how many each: the
// source a collection really pages from is its own, whatever the last run named.
func sourcesLine(st *goclient.Status) string {
	total, incomplete := map[string]int64{}, map[string]int64{}
	for _, c := range st.Collections {
		total[c.Source]++
		if !c.Completed {
			incomplete[c.Source]++
		}
	}
	if len(total) == 0 {
		return ""
	}
	srcs := slices.SortedFunc(maps.Keys(total), func(x, y string) int {
		return cmp.Or(cmp.Compare(total[y], total[x]), strings.Compare(x, y))
	})
	var parts []string
	for _, s := range srcs {
		p := fmt.Sprintf("%s (%s", s, count(total[s], "collection"))
		if n := incomplete[s]; n > 0 {
			p += fmt.Sprintf(", %s incomplete", thousands(n))
		}
		parts = append(parts, p+")")
	}
	return "paging from " + strings.Join(parts, ", ")
}

// fromSource is " from SOURCE" for a collection's line while the collections page from more
// than one source, and "" while they all page from the one sourcesLine names.
func fromSource(st *goclient.Status, col goclient.CollectionStatus) string {
	for _, c := range st.Collections {
		if c.Source != col.Source {
			return "  from " + col.Source
		}
	}
	return ""
}
