package firehose

import (
	"context"
	"time"
)

// The stream counts as behind while a few batches of received events wait to be applied,
// or while the events it applies are older than behindLag (it is catching up). The lag
// threshold is well above the few seconds a PDS's clock or the relay's queue can add, so a
// current stream with skewed event times does not hold the backfill back.
const (
	behindAt  = 500
	behindLag = 10 * time.Second
)

func (f *Firehose) behind() bool {
	return f.st.backlog.Load() >= behindAt || time.Duration(f.st.lagNanos.Load()) > behindLag
}

// WaitCaughtUp returns once the stream is not behind, or after at most max, or when ctx
// ends. Bulk work that shares the
// machine and the index with the stream (a backfill's page fetches) calls it first, so the
// live stream, which users read within seconds, goes first: on 2 cores a zero-latency
// backfill otherwise took half the stream's rate.
func (f *Firehose) WaitCaughtUp(ctx context.Context, max time.Duration) error {
	if !f.behind() {
		return nil
	}
	deadline := time.Now().Add(max)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for f.behind() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// maxYield bounds how long bulk work keeps yielding to a stream that stays behind: past it
// (a relay whose event times run far behind the clock, a stream that cannot catch up),
// pages wait their budget and go on, as if there were no stream.
const maxYield = 10 * time.Minute

// ShouldYield says whether bulk work that already waited should give way again rather than
// run: the stream is behind, and has not been behind for longer than maxYield.
func (f *Firehose) ShouldYield() bool {
	if !f.behind() {
		f.behindSince.Store(0)
		return false
	}
	now := time.Now().UnixNano()
	if f.behindSince.CompareAndSwap(0, now) {
		return true
	}
	return time.Duration(now-f.behindSince.Load()) < maxYield
}
