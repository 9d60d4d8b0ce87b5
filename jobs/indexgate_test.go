package jobs

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// newTestGate is a gate whose waiters never give up waiting during a test.
func newTestGate() *indexGate {
	g := newIndexGate(1)
	g.maxWait = time.Hour
	return g
}

// enterNow reports whether a page of this depth gets a turn at once, and the turn.
func enterNow(t *testing.T, g *indexGate, depth int64) (gateTurn, bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a page that would have to wait gives up at once
	turn, err := g.enter(ctx, depth)
	if errors.Is(err, context.Canceled) {
		return gateTurn{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return turn, true
}

// The deepest chain never waits behind shallower pages; they share what is left.
func TestIndexGateKeepsATurnForTheDeepestChain(t *testing.T) {
	g := newTestGate()
	small, ok := enterNow(t, g, 0)
	if !ok {
		t.Fatal("a first page waited at an empty gate")
	}
	if _, ok := enterNow(t, g, 0); ok {
		t.Fatal("a second first page got in beside the first: one shared turn")
	}
	chain, ok := enterNow(t, g, 40)
	if !ok || !chain.kept {
		t.Fatalf("the deepest chain waited behind a first page (turn %+v, got in %v)", chain, ok)
	}
	if _, ok := enterNow(t, g, 12); ok {
		t.Fatal("a page got in while both turns were taken")
	}
	g.leave(chain)
	if _, ok := enterNow(t, g, 0); ok {
		t.Fatal("a first page took the turn kept for deeper chains")
	}
	mid, ok := enterNow(t, g, 12)
	if !ok || !mid.kept {
		t.Fatalf("a chain deeper than every page writing waited (turn %+v, got in %v)", mid, ok)
	}
	g.leave(small)
	g.leave(mid)
	if len(g.inShared) != 0 || g.kept {
		t.Fatalf("turns not all given back: shared %v, kept %v", g.inShared, g.kept)
	}
}

// A freed turn goes to the deepest waiter, then the oldest among equals.
func TestIndexGateHandsTurnsDeepestFirst(t *testing.T) {
	g := newTestGate()
	first, _ := enterNow(t, g, 0)
	kept, _ := enterNow(t, g, 50) // both turns taken from here on

	order := make(chan string, 3)
	turns := make(chan gateTurn, 3)
	for _, a := range []struct {
		name  string
		depth int64
	}{{"first page A", 0}, {"chain at 7", 7}, {"first page B", 0}} {
		go func() {
			turn, err := g.enter(context.Background(), a.depth)
			if err != nil {
				t.Error(err)
			}
			order <- a.name
			turns <- turn
		}()
		// The next one arrives once this one waits: arrival order is the order among equals.
		for waiting := 0; waiting < 1; {
			runtime.Gosched()
			g.mu.Lock()
			waiting = 0
			for _, w := range g.waiters {
				if w.seq == g.seq && w.depth == a.depth {
					waiting++
				}
			}
			g.mu.Unlock()
		}
	}

	var got []string
	g.leave(first) // one shared turn: to the chain at 7, deepest waiting
	got = append(got, <-order)
	g.leave(<-turns)
	got = append(got, <-order) // then the first page that came first
	g.leave(<-turns)
	got = append(got, <-order)
	g.leave(<-turns)
	g.leave(kept)
	want := []string{"chain at 7", "first page A", "first page B"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("turns went %v, want %v", got, want)
		}
	}
}

// A page whose context ends while it waits does not keep a turn.
func TestIndexGateCancelledWaiterGivesNothingAway(t *testing.T) {
	g := newTestGate()
	first, _ := enterNow(t, g, 0)
	if _, ok := enterNow(t, g, 0); ok {
		t.Fatal("a second first page got in")
	}
	g.leave(first)
	if _, ok := enterNow(t, g, 0); !ok {
		t.Fatal("the turn a cancelled waiter gave up was lost")
	}
}

// A page that waited maxWait writes beside the others rather than outlast its job's timeout.
func TestIndexGateLetsALongWaiterIn(t *testing.T) {
	g := newTestGate()
	first, _ := enterNow(t, g, 0)
	g.maxWait = time.Millisecond
	turn, err := g.enter(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.inShared) != 2 {
		t.Fatalf("pages writing in shared turns: %v, want both", g.inShared)
	}
	g.leave(turn)
	g.leave(first)
	if len(g.inShared) != 0 {
		t.Fatalf("turns not given back: %v", g.inShared)
	}
}
