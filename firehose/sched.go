package firehose

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/pgstore"
)

// scheduler applies the stream in batches, in stream order. HandleRepoStream decodes frames
// and calls AddWork on its reader goroutine; AddWork registers each event's seq with the
// tracker and queues it; one applier goroutine takes everything queued so far as one batch
// and applies it with a few RocksDB calls (applyBatch), while the reader decodes the next
// frames. Batches grow by themselves when the index is slower than the stream, and a batch
// of one costs no more than applying one event.
//
// Measured with the stream benchmark: indigo's parallel scheduler, one RocksDB read and
// write per event from eight workers, ran at about 31,000 events/s on 2 cores, and a third
// of that while a backfill's synced page writes shared RocksDB's write queue. Order is
// stricter than parallel's (all events in stream order, not only one account's), which is
// what an account deletion after its adds needs anyway.
//
// A batch that fails is marked failed in the tracker (the watermark stops before it), the
// connection is ended, and the stream resumes from the watermark: nothing is skipped.
type scheduler struct {
	f    *Firehose
	tr   *tracker
	ctx  context.Context
	fail context.CancelCauseFunc

	mu      sync.Mutex
	wake    *sync.Cond // signalled when pending grows, shrinks, or the scheduler closes
	pending []queued
	closed  bool
	done    chan struct{} // closed when the applier has returned
	// deciders decide record deletes ahead of the applier (decide.go), until done.
	deciders *deciders

	applied atomic.Int64
	// relayErr is the error frame the relay sent before closing, if any.
	relayErr atomic.Pointer[events.ErrorFrame]
}

// queued is an event waiting to be applied, with its place in the tracker.
type queued struct {
	xev *events.XRPCStreamEvent
	sl  *slot
}

// maxPending bounds the events decoded but not yet applied: the reader waits past it, so a
// slow index slows the reading instead of growing memory.
const maxPending = 2000

func newScheduler(ctx context.Context, fail context.CancelCauseFunc, f *Firehose, tr *tracker) *scheduler {
	s := &scheduler{f: f, tr: tr, ctx: ctx, fail: fail, done: make(chan struct{})}
	s.wake = sync.NewCond(&s.mu)
	s.deciders = f.startDeciders(s.done)
	go s.applier()
	return s
}

// AddWork is called by HandleRepoStream, one event at a time, in stream order.
func (s *scheduler) AddWork(ctx context.Context, repo string, xev *events.XRPCStreamEvent) error {
	seq, ok := sequence(xev)
	if !ok {
		// #info and error frames carry no seq and change nothing in the index; an
		// OutdatedCursor's gap is recorded here, before any later event is queued.
		if xev.Error != nil {
			s.relayErr.Store(xev.Error)
		}
		var t tally
		if err := s.f.apply(ctx, xev, &t); err != nil {
			return err
		}
		s.f.count(&t)
		return nil
	}
	if s.tr.base(seq) {
		// Nothing is applied until the starting point is saved: see tracker.base.
		if err := s.f.waitCursor(s.ctx, seq-1); err != nil {
			return fmt.Errorf("save the starting cursor: %w", err)
		}
	}
	sl, inOrder := s.tr.register(seq, eventTime(xev))
	if !inOrder {
		s.f.metrics.FirehoseBadEvents.WithLabelValues("seq_out_of_order").Inc()
		s.f.log.Warn("relay sent a seq not above the previous one", "seq", seq, "repo", repo)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) >= maxPending && !s.closed && s.ctx.Err() == nil {
		s.wake.Wait()
	}
	if s.closed || s.ctx.Err() != nil {
		s.tr.finish(sl, false) // never queued: never applied
		return fmt.Errorf("not applied: %w", context.Cause(s.ctx))
	}
	if xev.RepoCommit != nil {
		s.deciders.ahead(s.ctx, xev.RepoCommit)
	}
	s.pending = append(s.pending, queued{xev, sl})
	s.f.st.backlog.Store(int64(len(s.pending)))
	s.wake.Broadcast()
	return nil
}

// Shutdown waits until every queued event is applied (or failed).
func (s *scheduler) Shutdown() {
	s.mu.Lock()
	s.closed = true
	s.wake.Broadcast()
	s.mu.Unlock()
	<-s.done
}

// applier applies what is pending, batch after batch, until Shutdown and the queue is empty.
func (s *scheduler) applier() {
	defer close(s.done)
	// A failure cancels s.ctx; wake an AddWork waiting for room so it sees it.
	stop := context.AfterFunc(s.ctx, func() {
		s.mu.Lock()
		s.wake.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	for {
		s.mu.Lock()
		for len(s.pending) == 0 && !s.closed {
			s.wake.Wait()
		}
		batch := s.pending
		s.pending = nil
		s.f.st.backlog.Store(int64(len(batch)))
		s.wake.Broadcast() // room for the reader
		s.mu.Unlock()
		if len(batch) == 0 {
			return // closed and drained
		}
		s.apply(batch)
		s.f.st.backlog.Store(0)
	}
}

func (s *scheduler) apply(batch []queued) {
	var err error
	if cerr := context.Cause(s.ctx); cerr != nil {
		// Shutting down or already failed: leave the rest to the replay.
		err = fmt.Errorf("not applied: %w", cerr)
	} else {
		evts := make([]*events.XRPCStreamEvent, len(batch))
		for i, q := range batch {
			evts[i] = q.xev
		}
		err = s.applySafely(evts)
	}
	for _, q := range batch {
		s.tr.finish(q.sl, err == nil)
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.f.metrics.FirehoseFailures.Inc()
			s.f.log.Error("events not applied; replaying from the cursor", "first_seq", batch[0].sl.seq,
				"events", len(batch), "error", err)
			s.f.setError(err.Error())
		}
		s.fail(err)
		return
	}
	s.applied.Add(int64(len(batch)))
}

// applySafely applies a batch; a handler bug must not take the process down, and counts as
// the batch not applied.
func (s *scheduler) applySafely(evts []*events.XRPCStreamEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic applying events: %v", r)
		}
	}()
	return s.f.applyBatch(s.ctx, evts)
}

// waitCursor asks the flusher for a save now, and waits until it has saved a cursor at or
// past seq.
func (f *Firehose) waitCursor(ctx context.Context, seq int64) error {
	select {
	case f.flushNow <- struct{}{}:
	default: // one is already asked for
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for f.st.cursor.Load() < seq {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	return nil
}

// sequence returns the seq of the events that have one.
func sequence(xev *events.XRPCStreamEvent) (int64, bool) {
	switch {
	case xev.RepoCommit != nil:
		return xev.RepoCommit.Seq, true
	case xev.RepoSync != nil:
		return xev.RepoSync.Seq, true
	case xev.RepoIdentity != nil:
		return xev.RepoIdentity.Seq, true
	case xev.RepoAccount != nil:
		return xev.RepoAccount.Seq, true
	}
	return 0, false
}

// flusher makes the applied events durable and then records the watermark: sync the WAL,
// then save. Reading the mark before the sync is what keeps the cursor behind the index:
// every write of an event at or below the mark had returned before the mark was read, so the
// sync covers it.
type flusher struct {
	f           *Firehose
	lock        *pgx.Conn // the connection holding the advisory lock; only the flusher uses it
	tr          *tracker
	saved       int64
	generation  int64 // the cursor's generation when the follow began (MoveCursor)
	lastContact time.Time
}

// keepAlive is how long an idle follower goes without touching the lock connection: a dead
// one is noticed within this (and another process may then take over).
const keepAlive = 5 * time.Second

func (fl *flusher) flush(ctx context.Context) error {
	// Not cancelled with ctx: a query cut short by a shutdown would leave the lock connection
	// unusable for the last save on the way out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	mark, times := fl.tr.watermarkTimes()
	if mark <= fl.saved {
		return fl.idle(ctx)
	}
	if err := fl.f.cfg.Index.SyncWAL(); err != nil {
		// Not saved; the next tick tries again. The cursor stays behind, never ahead.
		fl.f.log.Error("sync index before saving the cursor", "error", err)
		fl.f.setError(err.Error())
		return fl.idle(ctx)
	}
	id, err := fl.f.cfg.Index.ID()
	if err != nil {
		return fmt.Errorf("%w: %w", errLockLost, err)
	}
	saved, err := queries.FirehoseCursorSave(ctx, fl.lock, pgstore.FirehoseCursorSaveParams{
		Relay: fl.f.relay, Seq: mark, Generation: fl.generation, IndexID: id, EventTime: medianTime(times)})
	if err != nil {
		return fmt.Errorf("%w: save cursor %d: %w", errLockLost, mark, err)
	}
	if saved == 0 {
		if moved, err := fl.moved(ctx); err != nil {
			return fmt.Errorf("%w: %w", errLockLost, err)
		} else if moved {
			return errCursorMoved
		}
		// Stop following: the events applied here are not in the database's index.
		return fmt.Errorf("%w: the database is bound to another index than this follower's (%s); restart colindex", errLockLost, id)
	}
	fl.saved = mark
	fl.lastContact = time.Now()
	fl.f.setCursor(mark)
	return nil
}

// idle is a flush that saves nothing: every keepAlive it checks the generation, which touches
// the lock connection and notices a move while nothing is saved (a follower the relay turns
// away with FutureCursor, or one whose index cannot sync).
func (fl *flusher) idle(ctx context.Context) error {
	if time.Since(fl.lastContact) < keepAlive {
		return nil
	}
	moved, err := fl.moved(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errLockLost, err)
	}
	if moved {
		return errCursorMoved
	}
	fl.lastContact = time.Now()
	return nil
}

// moved says whether an operator moved the cursor since the follow began. A cursor row that is
// gone (a reopen deleted it) is not a move: the next save writes it again.
func (fl *flusher) moved(ctx context.Context) (bool, error) {
	gen, err := queries.FirehoseCursorGeneration(ctx, fl.lock, fl.f.relay)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check the cursor's generation: %w", err)
	}
	return gen != fl.generation, nil
}
