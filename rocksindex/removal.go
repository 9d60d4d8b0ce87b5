package rocksindex

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linxGnu/grocksdb"
)

// cfGone holds a tombstone for every pair the stream removed because the account's last
// record of the collection was deleted: key <collection> 0x00 <did> (as rbc), value the
// removal time (unix nanoseconds, big-endian).
//
// The rule: a tombstone wins over every backfill page, and only the stream clears it (a
// later create or update of that collection by that account, AddPairs). A backfill source
// such as bsky.network never removes anything, so a page listing the pair, fetched before or
// after the removal, is no evidence that the account has a record there again; the stream's
// next create is. Removal and page writes are exclusive of each other (the account lock), so
// a page either wrote before the removal (which then deletes its pair) or reads the tombstone.
const cfGone = "gone"

// RemovePairs removes pairs the stream proved gone, both sides, and leaves their tombstones,
// in one write; it returns how many of them the index held. A deleted account's pairs get no
// tombstone: its status already keeps every page and create out, for good, and a replayed
// delete after the account's deletion would otherwise leave one the first pass did not. The
// write is not synced: the stream syncs before it records progress past it.
func (ix *Index) RemovePairs(pairs []Pair) (int, error) { return ix.removePairs(pairs, nil) }

func (ix *Index) removePairs(pairs []Pair, since *Since) (int, error) {
	if len(pairs) == 0 {
		return 0, nil
	}
	ix.acct.mu.Lock()
	defer ix.acct.mu.Unlock()
	if err := ix.pairsUnchanged(pairs, since); err != nil {
		return 0, err
	}
	ix.stamps.wrote(pairs)
	pairs = slices.Compact(slices.SortedFunc(slices.Values(pairs), comparePairs))
	keys := make([][]byte, len(pairs))
	dids := make([]string, len(pairs))
	for i, p := range pairs {
		keys[i] = rbcKey(p.Collection, p.DID)
		dids[i] = p.DID
	}
	vals, err := ix.db.MultiGetCF(ix.read, ix.rbc, keys...)
	if err != nil {
		return 0, fmt.Errorf("look up %d pairs to remove: %w", len(pairs), err)
	}
	defer vals.Destroy()
	sts, err := ix.statuses(dids)
	if err != nil {
		return 0, err
	}
	stamp := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	held := 0
	deltas := map[string]int64{}
	for i, p := range pairs {
		if vals[i].Exists() {
			held++
			if sts[i] == "" {
				deltas[p.Collection]--
			}
		}
		wb.DeleteCF(ix.rbc, keys[i])
		wb.DeleteCF(ix.cbr, cbrKey(p.DID, p.Collection))
		if sts[i] != StatusDeleted {
			wb.PutCF(ix.gone, keys[i], stamp)
		}
	}
	commit := ix.counts.stage(wb, deltas)
	ix.present.forget(pairs...)
	if err := ix.db.Write(ix.acct.noSync, wb); err != nil {
		return 0, fmt.Errorf("remove %d pairs: %w", len(pairs), err)
	}
	commit()
	return held, nil
}

func comparePairs(a, b Pair) int {
	if c := strings.Compare(a.Collection, b.Collection); c != 0 {
		return c
	}
	return strings.Compare(a.DID, b.DID)
}

// Removed reports whether the stream removed (collection, did) and no later create brought
// it back.
func (ix *Index) Removed(collection, did string) (bool, error) {
	v, err := ix.db.GetCF(ix.read, ix.gone, rbcKey(collection, did))
	if err != nil {
		return false, fmt.Errorf("tombstone of %s in %s: %w", did, collection, err)
	}
	defer v.Free()
	return v.Exists(), nil
}

// withoutGone drops the DIDs whose pair with collection has a tombstone. Callers hold
// acct.mu (shared).
func (ix *Index) withoutGone(collection string, dids []string) ([]string, error) {
	keys := make([][]byte, len(dids))
	for i, d := range dids {
		keys[i] = rbcKey(collection, d)
	}
	vals, err := ix.db.MultiGetCF(ix.read, ix.gone, keys...)
	if err != nil {
		return nil, fmt.Errorf("tombstones of %d DIDs in %s: %w", len(dids), collection, err)
	}
	defer vals.Destroy()
	kept := dids[:0:0]
	for i, v := range vals {
		if !v.Exists() {
			kept = append(kept, dids[i])
		}
	}
	return kept, nil
}
