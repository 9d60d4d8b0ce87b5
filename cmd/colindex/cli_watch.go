package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/colindex/colindex/sdk/goclient"
)

// progressView shows a watched backfill: update gets every status read, end the last one
// (nil when the watch was interrupted or failed).
type progressView interface {
	update(st *goclient.Status, now time.Time)
	end(st *goclient.Status)
	// stream sets the firehose's state shown from the next update on (nil: not shown).
	stream(fh *goclient.FirehoseStatus)
}

// watch follows the backfill until no backfill job is live, then prints the summary. On a
// terminal it draws bars; otherwise (a pipe, a log file) it prints one plain line per
// interval, since mpb draws nothing there until the bars end.
func watch(c *cli.Context, a *admin) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	st, err := a.status(ctx)
	if err != nil {
		return err
	}
	var view progressView = &linesView{w: c.App.Writer}
	if isTerminal(c.App.Writer) {
		view = newBarsView(ctx, c.App.Writer, st, c.Int64("expect-dids"))
	}
	// The stream's lag beside the backfill: an unreadable state only leaves it out.
	readStream := func() {
		if fh, err := a.firehoseStatus(ctx); err == nil {
			view.stream(fh)
		}
	}
	readStream()
	view.update(st, time.Now())
	tick := time.NewTicker(c.Duration("interval"))
	defer tick.Stop()
	for st.Running {
		select {
		case <-ctx.Done():
			view.end(nil)
			return nil
		case <-tick.C:
		}
		if st, err = a.status(ctx); err != nil {
			view.end(nil)
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil // interrupted mid-request
			}
			return err
		}
		readStream()
		view.update(st, time.Now())
	}
	view.end(st)
	printSummary(c.App.Writer, st, c.Int("recent"))
	return printReplica(c, a)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// linesView prints a line per status read: collections, DIDs, the DID rate since the
// previous line, and "paused" while paging is paused.
type linesView struct {
	w        io.Writer
	at       time.Time
	imported int64
	fh       *goclient.FirehoseStatus
}

func (v *linesView) stream(fh *goclient.FirehoseStatus) { v.fh = fh }

func (v *linesView) update(st *goclient.Status, now time.Time) {
	line := fmt.Sprintf("%s collections %s/%s complete, %s", now.Local().Format(time.DateTime),
		thousands(st.Completed), thousands(st.Total), count(st.TotalImported, "DID"))
	if secs := now.Sub(v.at).Seconds(); !v.at.IsZero() && secs > 0 {
		// A reset removes DIDs; the rate says how fast they arrive, never negative.
		rate := max(float64(st.TotalImported-v.imported)/secs, 0)
		line += fmt.Sprintf(", %s DIDs/s", thousands(int64(math.Round(rate))))
	}
	if st.Running && st.Paused {
		line += ", paused"
	}
	if lag, ok := streamLag(v.fh); ok {
		line += ", " + lag
	}
	v.at, v.imported = now, st.TotalImported
	fmt.Fprintln(v.w, line)
}

func (v *linesView) end(*goclient.Status) {} // the last update printed the final state

// barsView draws two mpb bars: collections complete, and DIDs imported with an EWMA rate
// (and an ETA when the expected total is known).
type barsView struct {
	p           *mpb.Progress
	colls, dids *mpb.Bar
	didsTotal   int64 // 0: unknown
	paused      atomic.Bool
	lag         atomic.Value // string: the stream's lag, "" when not shown
	last        time.Time
}

func (v *barsView) stream(fh *goclient.FirehoseStatus) {
	lag, _ := streamLag(fh)
	v.lag.Store(lag)
}

// streamLag is the firehose's lag for a progress line, when this process follows a stream.
func streamLag(fh *goclient.FirehoseStatus) (string, bool) {
	if fh == nil || !fh.Enabled || !fh.Following {
		return "", false
	}
	return fmt.Sprintf("stream lag %s", (time.Duration(fh.LagSeconds * float64(time.Second))).Round(100*time.Millisecond)), true
}

func newBarsView(ctx context.Context, w io.Writer, st *goclient.Status, expectDIDs int64, opts ...mpb.ContainerOption) *barsView {
	v := &barsView{}
	if expectDIDs > st.TotalImported {
		v.didsTotal = expectDIDs
	}
	v.p = mpb.NewWithContext(ctx, append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(50),
		mpb.WithRefreshRate(200 * time.Millisecond)}, opts...)...)
	// Bars made with total 0 never complete by themselves (SetTotal(n, false) keeps them
	// open): a reset can reopen a collection after all were complete, and end completes them.
	v.colls = v.p.New(0, mpb.BarStyle(), mpb.BarFillerMiddleware(floorFill),
		mpb.PrependDecorators(decor.Name("collections", decor.WCSyncSpaceR), decor.CountersNoUnit("%d / %d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Any(floorPercent, decor.WCSyncSpace), decor.Any(func(decor.Statistics) string {
			if v.paused.Load() {
				return " paused"
			}
			return ""
		})))
	etaOrElapsed := decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace)
	if v.didsTotal == 0 {
		etaOrElapsed = decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)
	}
	v.dids = v.p.New(0, mpb.BarStyle(), mpb.BarFillerMiddleware(floorFill),
		mpb.PrependDecorators(decor.Name("DIDs", decor.WCSyncSpaceR), decor.CurrentNoUnit("%d", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.EwmaSpeed(nil, "%.0f/s", 30, decor.WCSyncSpace), etaOrElapsed, decor.Any(func(decor.Statistics) string {
			if lag, _ := v.lag.Load().(string); lag != "" {
				return " " + lag
			}
			return ""
		})))
	return v
}

func (v *barsView) update(st *goclient.Status, now time.Time) {
	v.paused.Store(st.Running && st.Paused)
	v.colls.SetTotal(st.Total, false)
	v.colls.SetCurrent(st.Completed)
	v.dids.SetTotal(max(v.didsTotal, st.TotalImported), false)
	if v.last.IsZero() {
		v.dids.SetCurrent(st.TotalImported)
	} else {
		v.dids.EwmaSetCurrent(st.TotalImported, now.Sub(v.last))
	}
	v.last = now
}

func (v *barsView) end(st *goclient.Status) {
	if st != nil && st.Completed == st.Total {
		v.colls.SetTotal(st.Total, true)
		v.dids.SetTotal(st.TotalImported, true)
	} else {
		// Interrupted, or the backfill stopped short: the bars stay as they are, not full.
		v.colls.Abort(false)
		v.dids.Abort(false)
	}
	v.p.Wait()
}

// floorPercent is the collections bar's percentage, rounded down: mpb's rounds 199/200 to
// 100 %, which says done while a collection is not.
func floorPercent(s decor.Statistics) string {
	if s.Total <= 0 {
		return "0 %"
	}
	return fmt.Sprintf("%d %%", min(s.Current*100/s.Total, 100))
}

// floorFill makes a bar's fill round down too: mpb fills to the nearest cell, so a 50-wide
// bar at 199/200 is drawn full. It hands the filler the cell count, rounded down, as its
// progress, computing the width as mpb's bar filler does (brackets excluded).
func floorFill(base mpb.BarFiller) mpb.BarFiller {
	return mpb.BarFillerFunc(func(w io.Writer, st decor.Statistics) error {
		if st.Total > 0 && st.Current < st.Total {
			cells := min(cmp.Or(st.RequestedWidth, st.AvailableWidth), st.AvailableWidth)
			if cells -= 2; cells > 0 { // BarStyle's "[" and "]"
				st.Current, st.Total = st.Current*int64(cells)/st.Total, int64(cells)
			}
		}
		return base.Fill(w, st)
	})
}
