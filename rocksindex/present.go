package rocksindex

import "sync"

// present is a bounded set of pairs known to be whole in the index (both keys written), so
// the stream's commonest add, an account writing again to a collection it already has, costs
// a map lookup instead of RocksDB reads. Measured with the stream benchmark, the two reads
// of every add were a third of the applier's time.
//
// It may only say "present" for a pair the index holds whole. Pairs enter it after AddPairs
// found or wrote both keys, and leave it before anything removes keys, under the same locks:
//   - RemovePairs and RemoveAccount hold acct.mu exclusively (no AddPairs runs), and forget
//     the pairs they remove;
//   - DeleteCollection forgets its collection at its start, and again at its range delete
//     under the collection's stripe lock (no AddPairs of that collection runs then).
//
// Status changes remove nothing, so they leave it alone. When it is full it starts again
// empty: a few hundred thousand pairs cover the accounts active in any minute.
type present struct {
	mu  sync.Mutex
	set map[Pair]struct{}
	max int
}

// presentMax bounds the set: about 30 MB at the network's DID and NSID lengths.
const presentMax = 250_000

func (p *present) add(prs []Pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.set == nil || len(p.set)+len(prs) > p.max {
		p.set = make(map[Pair]struct{}, min(p.max, 1024))
	}
	for _, pr := range prs {
		p.set[pr] = struct{}{}
	}
}

func (p *present) forget(prs ...Pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range prs {
		delete(p.set, pr)
	}
}

func (p *present) forgetCollection(collection string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pr := range p.set {
		if pr.Collection == collection {
			delete(p.set, pr)
		}
	}
}

// missing returns the pairs of prs the set does not hold.
func (p *present) missing(prs []Pair) []Pair {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := prs[:0:0]
	for _, pr := range prs {
		if _, ok := p.set[pr]; !ok {
			out = append(out, pr)
		}
	}
	return out
}
