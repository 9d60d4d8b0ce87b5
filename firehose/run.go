package firehose

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/pgstore"
)

var queries = pgstore.New()

// firstReadTimeout bounds the wait for anything from a fresh connection. HandleRepoStream
// extends the read deadline on each pong (it pings every 30 s) but sets none before the first,
// so without this a relay that accepts and then goes silent would hold the follower forever.
const firstReadTimeout = 90 * time.Second

// errLockLost ends a follow: the lock connection failed, so another process may follow now.
var errLockLost = errors.New("firehose lock connection lost")

// errCursorMoved ends a follow: an operator moved the cursor (MoveCursor), and the next follow
// starts from it.
var errCursorMoved = errors.New("the firehose cursor was moved")

// Run follows the relay until ctx ends: it waits for the lock, then connects, applies events
// and saves the cursor, reconnecting with backoff after any failure. It returns nil when ctx
// ends; nothing else stops it.
func (f *Firehose) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		lock, err := f.acquire(ctx)
		if err != nil {
			break // ctx ended
		}
		err = f.follow(ctx, lock)
		f.st.following.Store(false)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = queries.FirehoseUnlock(closeCtx, lock, lockKey) // on a lost connection, closing is enough
		lock.Close(closeCtx)                                // ends the session: the lock is released
		cancel()
		if ctx.Err() != nil {
			break
		}
		if errors.Is(err, errCursorMoved) {
			// What went wrong before concerned the old cursor (a FutureCursor, say).
			f.setError("")
			f.log.Info("the cursor was moved; following again from it")
			continue
		}
		f.log.Warn("stopped following; will retry", "error", err)
		f.setError(err.Error())
		if wait(ctx, jitter(f.cfg.LockRetry)) != nil {
			break
		}
	}
	return nil
}

// acquire returns a dedicated connection holding the advisory lock, retrying until it gets one
// or ctx ends.
func (f *Firehose) acquire(ctx context.Context) (*pgx.Conn, error) {
	logged := false
	for {
		conn, err := pgx.ConnectConfig(ctx, f.cfg.Pool.Config().ConnConfig.Copy())
		if err == nil {
			var locked bool
			locked, err = queries.FirehoseLockTry(ctx, conn, lockKey)
			if err == nil && locked {
				f.st.following.Store(true)
				f.log.Info("holding the firehose lock: following")
				return conn, nil
			}
			conn.Close(context.WithoutCancel(ctx))
			if err == nil && !logged {
				f.log.Info("another process follows the firehose for this database; waiting")
				logged = true
			}
		}
		if err != nil && ctx.Err() == nil {
			f.log.Warn("take firehose lock", "error", err)
			f.setError(fmt.Sprintf("take firehose lock: %v", err))
		}
		if err := wait(ctx, jitter(f.cfg.LockRetry)); err != nil {
			return nil, err
		}
	}
}

// follow streams from the durable cursor while holding the lock on lock, until ctx ends or the
// lock connection fails.
func (f *Firehose) follow(ctx context.Context, lock *pgx.Conn) error {
	f.st.gapAfter.Store(-2) // none reported in this follow yet (-1 is a cursor: the live tail)
	saved, err := queries.FirehoseCursorGet(ctx, lock, f.relay)
	if errors.Is(err, pgx.ErrNoRows) {
		saved.Seq = -1 // never followed: start at the live tail
	} else if err != nil {
		return fmt.Errorf("read firehose cursor: %w", err)
	}
	cursor := saved.Seq
	f.setCursor(cursor)
	tr := newTracker(cursor)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fl := &flusher{f: f, lock: lock, tr: tr, saved: cursor, generation: saved.Generation, lastContact: time.Now()}
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(f.cfg.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-f.flushNow:
			}
			if err := fl.flush(ctx); err != nil {
				cancel(err)
				return
			}
		}
	})

	attempt := 0
	for ctx.Err() == nil {
		applied, err := f.connect(ctx, tr)
		// Every event of that connection has finished or failed: resume after the mark, so
		// anything not applied is sent again.
		tr.reset()
		if ctx.Err() != nil {
			break
		}
		f.log.Warn("relay connection ended; reconnecting", "error", err, "applied", applied)
		f.setError(err.Error())
		f.st.reconnects.Add(1)
		f.metrics.FirehoseReconnects.Inc()
		if applied > 0 {
			attempt = 0
		}
		if wait(ctx, f.backoff(attempt)) != nil {
			break
		}
		attempt++
	}
	wg.Wait()
	cause := context.Cause(ctx)
	if errors.Is(cause, errLockLost) || errors.Is(cause, errCursorMoved) {
		return cause // no last save: it would fail, or write over the move
	}
	// A last flush on the way out, with a context of its own: the caller's has ended.
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelFlush()
	if err := fl.flush(flushCtx); err != nil {
		f.log.Warn("final cursor save", "error", err)
	}
	return cause
}

// readBufferBytes is the connection's read buffer. gorilla's default, 4 KB, holds two or
// three commit frames, so catching up cost a read system call every few events (7% of the
// follower's CPU on the stream benchmark); 256 KB holds a few hundred, and a live stream's
// reads return whatever has arrived, as before.
const readBufferBytes = 256 << 10

// connect runs one relay connection to its end and returns how many events it applied.
func (f *Firehose) connect(ctx context.Context, tr *tracker) (int64, error) {
	u := *f.endpoint
	mark := tr.watermark()
	if mark >= 0 {
		u.RawQuery = "cursor=" + strconv.FormatInt(mark, 10)
	}
	f.st.dialedFrom.Store(mark)
	dialer := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: readBufferBytes}
	con, resp, err := dialer.DialContext(ctx, u.String(), http.Header{"User-Agent": {"colindex"}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", u.String(), err)
	}
	f.log.Info("connected to relay", "url", u.String())
	f.st.connected.Store(true)
	f.metrics.FirehoseConnected.Set(1)
	defer func() {
		f.st.connected.Store(false)
		f.metrics.FirehoseConnected.Set(0)
	}()
	if err := con.SetReadDeadline(time.Now().Add(firstReadTimeout)); err != nil {
		con.Close()
		return 0, fmt.Errorf("set read deadline: %w", err)
	}

	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := newScheduler(connCtx, cancel, f, tr)
	// HandleRepoStream closes con and shuts the scheduler down (waiting for queued events).
	err = events.HandleRepoStream(connCtx, con, s, f.log)
	f.decisions.Clear() // verdicts of events that were never applied: replayed, decided again
	if cause := context.Cause(connCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	if ef := s.relayErr.Load(); ef != nil {
		err = fmt.Errorf("relay sent error %s: %w", describeErrorFrame(ef), err)
	}
	return s.applied.Load(), err
}

// backoff is the wait before reconnect attempt n: exponential, capped, with full jitter.
func (f *Firehose) backoff(n int) time.Duration {
	d := f.cfg.MinBackoff << min(n, 20)
	if d <= 0 || d > f.cfg.MaxBackoff {
		d = f.cfg.MaxBackoff
	}
	return jitter(d)
}

// jitter returns a duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// wait sleeps for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (f *Firehose) setCursor(c int64) {
	f.st.cursor.Store(c)
	f.metrics.FirehoseCursor.Set(float64(c))
}
