package rocksindex

import (
	"sync"
	"sync/atomic"
)

// resets records the DIDs written to a collection while DeleteCollection removes it, so its
// last step can remove their cbr keys too.
//
// DeleteCollection walks the collection's rbc keys to delete their cbr keys, then removes
// the rbc keys with one range delete. A pair written during the walk behind its position
// (a stream add, a page in flight) would lose its rbc key to the range delete and keep its
// cbr key: the DID would name the collection in CollectionsOf while no listing has it. Every
// write of a pair records it here under the collection's stripe lock (counts.lock), and the
// last step takes the records under the same lock, so each such write is either recorded and
// removed whole with the range, or made after it and kept whole.
//
// A crash loses the records, not the consistency: the rbc keys are still there, and the
// reset job runs DeleteCollection again, whose walk meets them all.
type resets struct {
	active atomic.Int32 // collections being deleted; zero makes note free
	mu     sync.Mutex
	dids   map[string]map[string]struct{}
}

// begin starts recording writes to collection. Callers hold the collection's stripe lock.
func (r *resets) begin(collection string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dids == nil {
		r.dids = map[string]map[string]struct{}{}
	}
	if _, ok := r.dids[collection]; !ok {
		r.dids[collection] = map[string]struct{}{}
		r.active.Add(1)
	}
}

// note records that pairs were written. Callers hold the stripe locks of their collections.
func (r *resets) note(pairs []Pair) {
	if r.active.Load() == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pairs {
		if set, ok := r.dids[p.Collection]; ok {
			set[p.DID] = struct{}{}
		}
	}
}

// end stops recording writes to collection and returns the DIDs written since begin.
// Callers hold the collection's stripe lock.
func (r *resets) end(collection string) map[string]struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	set, ok := r.dids[collection]
	if ok {
		delete(r.dids, collection)
		r.active.Add(-1)
	}
	return set
}
