package source

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// tokenQueue hands out a rate.Limiter's tokens to waiting requests by priority, highest
// first, oldest first among equals, instead of in arrival order.
//
// Why: when the rate cap binds, a FIFO queue makes every request wait behind every other
// worker's, and a long collection's chain (whose pages can only come one after another)
// slows to a fraction of its own speed and ends long after everything else. Priority to the
// chains already deepest into their collection keeps the longest chain at full speed and
// lets the other workers fill the rest of the cap.
type tokenQueue struct {
	limiter *rate.Limiter

	mu          sync.Mutex
	waiters     waiterHeap
	seq         uint64
	dispatching bool
}

type waiter struct {
	priority int64
	seq      uint64
	ready    chan struct{}
	gone     bool // its context ended before it got a token
}

func newTokenQueue(l *rate.Limiter) *tokenQueue { return &tokenQueue{limiter: l} }

// errQueueTimeout says a request waited maxWait without getting a token.
var errQueueTimeout = errors.New("rate cap: no token within the wait limit")

// wait blocks until the request may be sent, or for at most maxWait: a low-priority request
// can wait behind deeper chains for as long as they keep the cap busy, and its caller should
// then step aside (snooze) rather than spend its job's time.
func (q *tokenQueue) wait(ctx context.Context, priority int64, maxWait time.Duration) error {
	if q.limiter.Limit() == rate.Inf {
		return ctx.Err()
	}
	timer := time.NewTimer(maxWait)
	defer timer.Stop()
	q.mu.Lock()
	q.seq++
	w := &waiter{priority: priority, seq: q.seq, ready: make(chan struct{})}
	heap.Push(&q.waiters, w)
	if !q.dispatching {
		q.dispatching = true
		go q.dispatch()
	}
	q.mu.Unlock()

	giveUp := func(err error) error {
		q.mu.Lock()
		defer q.mu.Unlock()
		select {
		case <-w.ready: // the token came anyway: use it
			return nil
		default:
			w.gone = true
			return err
		}
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		return giveUp(ctx.Err())
	case <-timer.C:
		return giveUp(errQueueTimeout)
	}
}

// dispatch takes one token at a time from the limiter and gives it to the best waiter, until
// nobody waits.
func (q *tokenQueue) dispatch() {
	for {
		q.mu.Lock()
		for q.waiters.Len() > 0 && q.waiters[0].gone {
			heap.Pop(&q.waiters)
		}
		if q.waiters.Len() == 0 {
			q.dispatching = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()

		_ = q.limiter.Wait(context.Background()) // never fails without a deadline

		q.mu.Lock()
		for q.waiters.Len() > 0 {
			w := heap.Pop(&q.waiters).(*waiter)
			if !w.gone {
				close(w.ready)
				break
			}
		}
		q.mu.Unlock()
	}
}

type waiterHeap []*waiter

func (h waiterHeap) Len() int { return len(h) }
func (h waiterHeap) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority > h[j].priority
	}
	return h[i].seq < h[j].seq
}
func (h waiterHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *waiterHeap) Push(x any)   { *h = append(*h, x.(*waiter)) }
func (h *waiterHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}
