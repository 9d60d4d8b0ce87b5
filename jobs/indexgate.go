package jobs

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"
)

// indexGate orders the pages' index writes. It has shared turns, which any page may take,
// deepest first (depth: pages already fetched of its collection), oldest first among
// equals; and one turn kept for a page of a chain deeper than every page writing, which it
// takes without waiting for a shared one.
//
// Why: a page's index write is most of its CPU (the existence lookups and the batch), and
// RocksDB takes concurrent writes one group at a time, so eight workers writing at once do
// not write faster than one or two (measured: 75–100k DIDs/s with one writer, 90k with
// eight), but each waits its share. The longest collection's chain, whose pages can only
// come one after another, then waits behind every small collection at every link, and at
// 1,000 DIDs a page it finishes alone long after the rest (issue 13: a 300-page chain at
// 110–190 ms a link while the others ran, 30–50 ms once alone). With its own turn the chain
// writes at its own speed while the other workers take turns with what the index has left.
type indexGate struct {
	shared  int
	maxWait time.Duration // maxGateWait; tests change it

	mu       sync.Mutex
	inShared []int64 // depths of the pages writing in a shared turn
	kept     bool    // the kept turn is taken
	seq      uint64
	waiters  gateHeap
}

// indexGateShared is how many pages write at once besides the deepest chain's: one, since
// RocksDB takes the writes one group at a time anyway, and each more page writing beside the
// chain's slows the chain's write (measured at limit 1,000 on 2 cores: the chain's write
// 17–25 ms a link with one page beside it, 40–60 ms with two, 45–95 ms with seven).
const indexGateShared = 1

func newIndexGate(shared int) *indexGate { return &indexGate{shared: shared, maxWait: maxGateWait} }

// maxGateWait bounds a page's wait for its turn: past it the page writes anyway, beside the
// others. The gate orders the writes; it must not make a page outlast its job's timeout,
// whose pageCommitBudget (3 s) covers the wait, the write and the commit.
const maxGateWait = time.Second

// gateTurn is the turn a page writes in, to give back with leave.
type gateTurn struct {
	depth int64
	kept  bool
}

type gateWaiter struct {
	depth int64
	seq   uint64
	ready chan struct{}
	turn  gateTurn // set when ready is closed
	gone  bool     // it stopped waiting before its turn
}

// enter blocks until the page may write (or for maxGateWait), or until ctx ends. A page that
// entered must leave with the turn. A nil gate lets every page through.
func (g *indexGate) enter(ctx context.Context, depth int64) (gateTurn, error) {
	if g == nil {
		return gateTurn{}, ctx.Err()
	}
	g.mu.Lock()
	if g.waiters.Len() == 0 || depth > g.waiters[0].depth {
		if t, ok := g.take(depth); ok {
			g.mu.Unlock()
			return t, nil
		}
	}
	g.seq++
	w := &gateWaiter{depth: depth, seq: g.seq, ready: make(chan struct{})}
	heap.Push(&g.waiters, w)
	g.mu.Unlock()
	timer := time.NewTimer(g.maxWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return w.turn, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-w.ready: // the turn came meanwhile
		if err != nil {
			g.give(w.turn)
		}
		return w.turn, err
	default:
	}
	w.gone = true
	if err != nil {
		return gateTurn{}, err
	}
	g.inShared = append(g.inShared, depth) // waited long enough: in beside the others
	return gateTurn{depth: depth}, nil
}

// leave gives the turn back.
func (g *indexGate) leave(t gateTurn) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.give(t)
}

// take gives a page of this depth a turn if one is free for it: the kept turn if it is
// deeper than every page writing (and than a first page), else a shared one. g.mu is held.
func (g *indexGate) take(depth int64) (gateTurn, bool) {
	deepest := !g.kept && depth > 0 && (len(g.inShared) == 0 || depth > slices.Max(g.inShared))
	switch {
	case deepest:
		g.kept = true
		return gateTurn{depth: depth, kept: true}, true
	case len(g.inShared) < g.shared:
		g.inShared = append(g.inShared, depth)
		return gateTurn{depth: depth}, true
	}
	return gateTurn{}, false
}

// give takes a turn back and hands the free turns to the best waiters. g.mu is held.
func (g *indexGate) give(t gateTurn) {
	if t.kept {
		g.kept = false
	} else if i := slices.Index(g.inShared, t.depth); i >= 0 {
		g.inShared = slices.Delete(g.inShared, i, i+1)
	}
	for g.waiters.Len() > 0 {
		w := g.waiters[0]
		if w.gone {
			heap.Pop(&g.waiters)
			continue
		}
		turn, ok := g.take(w.depth)
		if !ok {
			return // the best waiter cannot write yet, so none can
		}
		heap.Pop(&g.waiters)
		w.turn = turn
		close(w.ready)
	}
}

type gateHeap []*gateWaiter

func (h gateHeap) Len() int { return len(h) }
func (h gateHeap) Less(i, j int) bool {
	if h[i].depth != h[j].depth {
		return h[i].depth > h[j].depth
	}
	return h[i].seq < h[j].seq
}
func (h gateHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *gateHeap) Push(x any)   { *h = append(*h, x.(*gateWaiter)) }
func (h *gateHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

// indexWrite is a page's index write, under way beside its commit's statements.
type indexWrite struct {
	entered  chan struct{} // closed once the write has its turn (enterErr says if it failed to)
	enterErr error
	turn     gateTurn
	done     chan struct{} // closed once the write has ended (err says how)
	err      error
}

// startIndexWrite writes the page's DIDs (one synced batch) in the background, in its turn
// at the gate. The page's commit statements run meanwhile: a chain's link then costs the
// write or the statements, whichever is longer, then the commit, instead of all of them.
func (w *PageWorker) startIndexWrite(ctx context.Context, coll string, dids []string, depth int64) *indexWrite {
	ix := &indexWrite{entered: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ix.done)
		ix.turn, ix.enterErr = w.gate.enter(ctx, depth)
		close(ix.entered)
		if ix.err = ix.enterErr; ix.err != nil {
			return
		}
		if w.beforeIndexWrite != nil {
			w.beforeIndexWrite(coll)
		}
		ix.err = w.Index.Add(coll, dids)
		w.gate.leave(ix.turn)
	}()
	return ix
}

// started waits for the write's turn and says whether it got one.
func (ix *indexWrite) started() error {
	<-ix.entered
	return ix.enterErr
}

// wait returns the write's error once it has ended; it may be called more than once.
func (ix *indexWrite) wait() error {
	<-ix.done
	return ix.err
}
