package rocksindex

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"

	"github.com/linxGnu/grocksdb"
)

// cfCount holds, per collection, how many DIDs the index lists for it: key <collection>,
// value a big-endian int64. A pair counts when its rbc key exists and its account is active
// (no acct key), exactly what ListRepos walks.
//
// Every count moves in the same write batch as the pairs (or the status) that move it, so a
// crash leaves counts and pairs agreeing. The value written is absolute, computed from the
// in-memory copy under a lock that no other writer of that collection's count can hold:
//   - adds and pair removals hold acct.mu shared and the stripe locks of their collections
//     across their existence read, their batch and their write;
//   - account removals and status changes hold acct.mu exclusively (no add runs then).
//
// So the read that decides "was this pair absent?" and the write are never split by another
// writer of the same pair, and concurrent backfill pages and stream batches count each pair
// once.
const cfCount = "count"

// countsVersionKey marks a count family built for the index's pairs. An index from before
// counts existed has pairs and no marker: Open counts it once (rebuildCounts).
var countsVersionKey = []byte{0x00, 'v', '1'}

// countStripes spreads collections over locks: two writers of different collections rarely
// wait for each other, and a stream batch over many collections takes a bounded set.
const countStripes = 64

type counts struct {
	cf      *grocksdb.ColumnFamilyHandle
	stripes [countStripes]sync.Mutex
	mu      sync.Mutex // guards n
	n       map[string]int64
}

func stripeOf(collection string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(collection))
	return int(h.Sum32() % countStripes)
}

// lock takes the stripes of collections in ascending order (so two writers never deadlock)
// and returns the function that releases them.
func (c *counts) lock(collections ...string) func() {
	var want [countStripes]bool
	for _, coll := range collections {
		want[stripeOf(coll)] = true
	}
	for i := range want {
		if want[i] {
			c.stripes[i].Lock()
		}
	}
	return func() {
		for i := range want {
			if want[i] {
				c.stripes[i].Unlock()
			}
		}
	}
}

// stage puts the new absolute counts for deltas into wb and returns the function that makes
// them current in memory, to call once wb is written. The caller holds the locks that make
// it the only writer of these collections' counts (see cfCount).
func (c *counts) stage(wb *grocksdb.WriteBatch, deltas map[string]int64) (commit func()) {
	next := make(map[string]int64, len(deltas))
	c.mu.Lock()
	for coll, d := range deltas {
		if d != 0 {
			next[coll] = max(c.n[coll]+d, 0)
		}
	}
	c.mu.Unlock()
	for coll, v := range next {
		wb.PutCF(c.cf, []byte(coll), binary.BigEndian.AppendUint64(nil, uint64(v)))
	}
	return func() {
		c.mu.Lock()
		maps.Copy(c.n, next)
		c.mu.Unlock()
	}
}

// setZero stages a collection's count as zero (a reset's range delete).
func (c *counts) setZero(wb *grocksdb.WriteBatch, collection string) (commit func()) {
	wb.PutCF(c.cf, []byte(collection), binary.BigEndian.AppendUint64(nil, 0))
	return func() {
		c.mu.Lock()
		c.n[collection] = 0
		c.mu.Unlock()
	}
}

// Count returns how many DIDs the index lists for collection.
func (ix *Index) Count(collection string) int64 {
	ix.counts.mu.Lock()
	defer ix.counts.mu.Unlock()
	return ix.counts.n[collection]
}

// CollectionCount is one collection and how many DIDs the index lists for it.
type CollectionCount struct {
	Collection string
	Count      int64
}

// CollectionCounts returns, in NSID order, the collections after after (exclusive, "" from
// the start) that list at least one DID, up to limit of them (limit <= 0: all). Answered
// from memory: a map copy and a sort, well under a millisecond at thousands of collections.
func (ix *Index) CollectionCounts(after string, limit int) []CollectionCount {
	ix.counts.mu.Lock()
	out := make([]CollectionCount, 0, len(ix.counts.n))
	for coll, n := range ix.counts.n {
		if n > 0 && coll > after {
			out = append(out, CollectionCount{coll, n})
		}
	}
	ix.counts.mu.Unlock()
	slices.SortFunc(out, func(a, b CollectionCount) int {
		if a.Collection < b.Collection {
			return -1
		}
		return 1
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// loadCounts reads the count family into memory at Open, counting the index first when it
// predates counts.
func (ix *Index) loadCounts() error {
	ix.counts.n = map[string]int64{}
	v, err := ix.db.GetCF(ix.read, ix.counts.cf, countsVersionKey)
	if err != nil {
		return fmt.Errorf("read counts marker: %w", err)
	}
	marked := v.Exists()
	v.Free()
	if !marked {
		return ix.rebuildCounts()
	}
	it := ix.db.NewIteratorCF(ix.read, ix.counts.cf)
	defer it.Close()
	for it.SeekToFirst(); it.Valid(); it.Next() {
		k, val := it.Key(), it.Value()
		if kd := k.Data(); len(kd) > 0 && kd[0] != 0x00 && len(val.Data()) == 8 {
			ix.counts.n[string(kd)] = int64(binary.BigEndian.Uint64(val.Data()))
		}
		k.Free()
		val.Free()
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read counts: %w", err)
	}
	return nil
}

// rebuildCounts counts every listed pair (one pass over rbc, with the inactive accounts in
// memory) and writes the counts and the marker in one synced batch. It runs once per index,
// at Open, before any writer.
func (ix *Index) rebuildCounts() error {
	inactive := map[string]struct{}{}
	if err := ix.walk(ix.acct.cf, func(key []byte) {
		inactive[string(key)] = struct{}{}
	}); err != nil {
		return fmt.Errorf("count index: %w", err)
	}
	n := map[string]int64{}
	if err := ix.walk(ix.rbc, func(key []byte) {
		coll, did, err := parseRBCKey(key)
		if _, hidden := inactive[did]; err == nil && !hidden {
			n[coll]++
		}
	}); err != nil {
		return fmt.Errorf("count index: %w", err)
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.DeleteRangeCF(ix.counts.cf, []byte{0x01}, []byte{0xff}) // any count left from before
	for coll, c := range n {
		wb.PutCF(ix.counts.cf, []byte(coll), binary.BigEndian.AppendUint64(nil, uint64(c)))
	}
	wb.PutCF(ix.counts.cf, countsVersionKey, nil)
	if err := ix.db.Write(ix.syncWrite, wb); err != nil {
		return fmt.Errorf("write counts: %w", err)
	}
	ix.counts.n = n
	return nil
}

// walk visits every key of cf.
func (ix *Index) walk(cf *grocksdb.ColumnFamilyHandle, visit func(key []byte)) error {
	it := ix.db.NewIteratorCF(ix.read, cf)
	defer it.Close()
	for it.SeekToFirst(); it.Valid(); it.Next() {
		k := it.Key()
		visit(k.Data())
		k.Free()
	}
	return it.Err()
}
