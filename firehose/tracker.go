package firehose

import "sync"

// tracker computes the low watermark of the stream: the highest seq such that every event
// received at or below it has been applied to the index. The scheduler runs different
// accounts' events at once, so they finish out of order; the cursor may only move past an
// event once everything before it is done too.
//
// Events are registered in the order the stream delivers them (one reader goroutine) and
// marked done from any worker.
type tracker struct {
	mu sync.Mutex
	// queue holds the registered events not yet passed by the watermark, in arrival order.
	queue []*slot
	// mark is the watermark: every event at or below it is done. times holds the time fields
	// (unparsed) of the events it passed since the flusher last took them, at most maxTimes.
	mark  int64
	times []string
	// outOfOrder counts events whose seq was not above the previous one (a relay fault).
	outOfOrder int64
	last       int64
}

// slot is one registered event.
type slot struct {
	seq    int64
	at     string // the event's time field
	done   bool
	failed bool // not applied: the watermark stops before it until the stream is replayed
}

// maxTimes bounds tracker.times: a quarter second at full speed passes some 20,000 events,
// and the first few hundred say as much about when the stream stood there (each is parsed at
// the save).
const maxTimes = 512

func newTracker(mark int64) *tracker { return &tracker{mark: mark, last: mark} }

// base is called with the first event of a follower that has no cursor yet (it started at the
// relay's live tail): the mark becomes the seq just before it, so that once saved, a crash
// replays from this event instead of starting again at the tail and skipping what came
// between. It reports whether it set the mark.
func (t *tracker) base(seq int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mark >= 0 || t.last >= 0 || len(t.queue) > 0 || seq <= 0 {
		return false
	}
	t.mark, t.last = seq-1, seq-1
	return true
}

// register records that the event seq, with the time field at, was received and is about to
// be applied. inOrder is false when seq is not above every seq before it (a relay fault: the
// event is applied, but the cursor cannot vouch for it).
func (t *tracker) register(seq int64, at string) (s *slot, inOrder bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	inOrder = seq > t.last
	if !inOrder {
		t.outOfOrder++
	}
	t.last = max(t.last, seq)
	s = &slot{seq: seq, at: at}
	t.queue = append(t.queue, s)
	return s, inOrder
}

// finish marks s applied (ok) or not applied (a failure that must be replayed).
func (t *tracker) finish(s *slot, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		s.done = true
	} else {
		s.failed = true
	}
}

// watermark advances past the done events at the front and returns the mark. An event that
// failed stops it for good: only a replay from the mark (reset) gets past it.
func (t *tracker) watermark() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.advance()
}

// watermarkTimes is watermark, with the time fields of the events passed since the last
// call (the flusher's): when the stream stood about there.
func (t *tracker) watermarkTimes() (int64, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	mark := t.advance()
	times := t.times
	t.times = nil
	return mark, times
}

func (t *tracker) advance() int64 {
	n := 0
	for _, s := range t.queue {
		if !s.done {
			break
		}
		// max: a relay that repeats an old seq must not move the mark back.
		t.mark = max(t.mark, s.seq)
		if s.at != "" && len(t.times) < maxTimes {
			t.times = append(t.times, s.at)
		}
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
	}
	return t.mark
}

// pending returns how many registered events the watermark has not passed.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// reset forgets every registered event, after a connection's events have all finished or
// failed: the stream is resumed from the mark, so whatever was not passed is replayed.
func (t *tracker) reset() int64 {
	mark := t.watermark()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = nil
	t.last = t.mark
	return mark
}
