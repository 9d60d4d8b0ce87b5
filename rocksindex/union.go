package rocksindex

import (
	"fmt"

	"github.com/linxGnu/grocksdb"
)

// MaxUnion is how many collections one ListReposUnion may merge: each costs an open iterator
// for the whole call, so the public endpoint caps it.
const MaxUnion = 20

// ListReposUnion returns up to limit DIDs listed in any of collections, in DID order, each
// once, starting after the DID after ("" starts at the beginning): the union of what
// ListRepos would list for each collection, so the last DID returned resumes it exactly.
// Inactive accounts are left out, as in ListRepos.
//
// It is a k-way merge: one iterator per collection, all on one snapshot so the page is one
// consistent view, and the acct walker beside the merged stream. Each step takes the
// smallest current DID and moves every iterator standing on it, which drops duplicates.
// k is at most MaxUnion, so a linear scan for the minimum beats a heap's bookkeeping.
func (ix *Index) ListReposUnion(collections []string, after string, limit int) ([]string, error) {
	if len(collections) > MaxUnion {
		return nil, fmt.Errorf("list repos: %d collections, at most %d", len(collections), MaxUnion)
	}
	collections = dedupe(collections)
	if len(collections) == 1 {
		return ix.listListed(collections[0], after, limit)
	}
	if limit <= 0 || len(collections) == 0 {
		return nil, nil
	}
	snap := ix.db.NewSnapshot()
	defer ix.db.ReleaseSnapshot(snap)
	its := make([]*collIter, 0, len(collections))
	defer func() {
		for _, c := range its {
			c.close()
		}
	}()
	for _, coll := range collections {
		its = append(its, ix.newCollIter(snap, coll, after))
	}
	acct := ix.newAcctWalker(snap)
	defer acct.close()
	page := newDIDPage(limit)
	for page.len() < limit {
		var least []byte
		for _, c := range its {
			if c.did != nil && (least == nil || string(c.did) < string(least)) {
				least = c.did
			}
		}
		if least == nil {
			break
		}
		// least is a view into an iterator that is about to move: the page copies it first.
		listed := !acct.inactive(least)
		if listed {
			page.add(least)
		}
		var did []byte
		if listed {
			did = page.last()
		} else {
			did = append([]byte(nil), least...)
		}
		for _, c := range its {
			if c.did != nil && string(c.did) == string(did) {
				c.next()
			}
		}
	}
	for _, c := range its {
		if err := c.it.Err(); err != nil {
			return nil, fmt.Errorf("list repos of %v: %w", collections, err)
		}
	}
	if err := acct.err(); err != nil {
		return nil, fmt.Errorf("list repos of %v: %w", collections, err)
	}
	return page.strings(), nil
}

// dedupe drops repeated collections, keeping the first of each (a repeated name would only
// cost a second iterator over the same keys).
func dedupe(collections []string) []string {
	if len(collections) < 2 {
		return collections
	}
	out := make([]string, 0, len(collections))
	seen := make(map[string]struct{}, len(collections))
	for _, c := range collections {
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	return out
}

// collIter walks the rbc keys of one collection in DID order.
type collIter struct {
	ro     *grocksdb.ReadOptions
	it     *grocksdb.Iterator
	prefix int // len("<collection> 0x00")
	// did is the current DID: a view into the iterator's memory, valid until it moves;
	// nil past the collection's end.
	did []byte
}

// newCollIter positions an iterator on the first DID of collection after after. snap may be nil.
func (ix *Index) newCollIter(snap *grocksdb.Snapshot, collection, after string) *collIter {
	ro := grocksdb.NewDefaultReadOptions()
	if snap != nil {
		ro.SetSnapshot(snap)
	}
	ro.SetIterateUpperBound(collectionUpperBound(collection))
	c := &collIter{ro: ro, it: ix.db.NewIteratorCF(ro, ix.rbc), prefix: len(collection) + 1}
	c.it.Seek(startKey(collection, after))
	c.load()
	return c
}

// startKey is where a walk of collection after after begins: <collection> 0x00 <after> 0x00
// sorts after <after> and before any longer DID.
func startKey(collection, after string) []byte {
	if after == "" {
		return collectionPrefix(collection)
	}
	return append(rbcKey(collection, after), sep)
}

func (c *collIter) load() {
	c.did = nil
	for c.it.Valid() {
		// Key allocates a small header, but Data is a view: no copy of the key.
		if k := c.it.Key().Data(); len(k) > c.prefix {
			c.did = k[c.prefix:]
			return
		}
		c.it.Next() // an empty DID is malformed: skipped, as parseRBCKey does
	}
}

func (c *collIter) next() {
	c.it.Next()
	c.load()
}

func (c *collIter) close() {
	c.it.Close()
	c.ro.Destroy()
}

// acctWalker answers "is this DID inactive?" for DIDs asked in ascending order. acct is in DID
// order too, so one iterator walks beside the scan and seeks only when it falls behind: at
// most one seek per inactive account in the range, however many DIDs are asked.
type acctWalker struct {
	ro    *grocksdb.ReadOptions // owned when the walker reads a snapshot
	it    *grocksdb.Iterator
	key   []byte // the iterator's current key, copied; nil once past the end
	begun bool
}

func (ix *Index) newAcctWalker(snap *grocksdb.Snapshot) *acctWalker {
	w := &acctWalker{}
	ro := ix.read
	if snap != nil {
		w.ro = grocksdb.NewDefaultReadOptions()
		w.ro.SetSnapshot(snap)
		ro = w.ro
	}
	w.it = ix.db.NewIteratorCF(ro, ix.acct.cf)
	return w
}

func (w *acctWalker) inactive(did []byte) bool {
	if !w.begun || (w.key != nil && string(w.key) < string(did)) {
		w.begun = true
		w.it.Seek(did)
		w.key = w.key[:0]
		if !w.it.Valid() {
			w.key = nil
		} else {
			w.key = append(w.key, w.it.Key().Data()...)
		}
	}
	return w.key != nil && string(w.key) == string(did)
}

func (w *acctWalker) err() error { return w.it.Err() }

func (w *acctWalker) close() {
	w.it.Close()
	if w.ro != nil {
		w.ro.Destroy()
	}
}

// didPage gathers a page of DIDs in one byte arena and turns them into strings with one
// allocation, instead of one per DID.
type didPage struct {
	buf  []byte
	ends []int
}

func newDIDPage(limit int) *didPage {
	// did:plc: DIDs are 32 bytes; a larger DID just grows the arena.
	return &didPage{buf: make([]byte, 0, min(limit, 10001)*32), ends: make([]int, 0, min(limit, 10001))}
}

func (p *didPage) add(did []byte) {
	p.buf = append(p.buf, did...)
	p.ends = append(p.ends, len(p.buf))
}

func (p *didPage) len() int { return len(p.ends) }

// last is the DID added last (a view into the arena).
func (p *didPage) last() []byte {
	start := 0
	if n := len(p.ends); n > 1 {
		start = p.ends[n-2]
	}
	return p.buf[start:p.ends[len(p.ends)-1]]
}

func (p *didPage) strings() []string {
	if len(p.ends) == 0 {
		return nil
	}
	all := string(p.buf)
	out := make([]string, len(p.ends))
	start := 0
	for i, end := range p.ends {
		out[i] = all[start:end]
		start = end
	}
	return out
}
