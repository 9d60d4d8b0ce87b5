package rocksindex

import (
	"context"
	"fmt"

	"github.com/linxGnu/grocksdb"
)

// deleteBatch bounds one batch of cbr deletes, so removing a 30M-DID collection never holds
// a huge batch in memory.
const deleteBatch = 10000

// DeleteCollection removes every DID of collection from the index and returns how many it
// removed. progress, when set, is called after each batch with the running total.
//
// The cbr keys (<did> 0x00 <collection>) are scattered, so they go one by one, in unsynced
// batches, found by walking the collection's rbc keys. The walk never meets a tombstone of
// its own: the rbc keys stay until the end, when one range delete removes them all and a
// compaction of that range drops the keys and the tombstone for good, so later reads of the
// collection and the collection scan of every start stay as fast as before. Then the WAL is
// synced. A delete cut short (a crash, a cancelled ctx) leaves the rbc keys, and running it
// again redoes the cbr deletes, which are idempotent.
func (ix *Index) DeleteCollection(ctx context.Context, collection string, progress func(removed int)) (int, error) {
	removed, after := 0, ""
	ix.present.forgetCollection(collection)
	// Writes during the walk are recorded, and removed whole at the end (resets.go). Begun
	// under the collection's stripe lock, as writes note: a write that saw no reset begun
	// has landed before the walk starts, so the walk meets it.
	unlock := ix.counts.lock(collection)
	ix.resets.begin(collection)
	unlock()
	ended := false
	defer func() {
		if !ended { // cut short: the next run walks again
			unlock := ix.counts.lock(collection)
			ix.resets.end(collection)
			// A pair the stream added during the walk, whose cbr key the walk then deleted,
			// is half-written: forgotten, so the next add of it makes it whole again.
			ix.present.forgetCollection(collection)
			unlock()
		}
	}()
	noSync := grocksdb.NewDefaultWriteOptions()
	defer noSync.Destroy()
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		dids, err := ix.listRaw(collection, after, deleteBatch)
		if err != nil {
			return removed, err
		}
		if len(dids) == 0 {
			break
		}
		wb := grocksdb.NewWriteBatch()
		for _, did := range dids {
			wb.DeleteCF(ix.cbr, cbrKey(did, collection))
		}
		err = ix.db.Write(noSync, wb)
		wb.Destroy()
		if err != nil {
			return removed, fmt.Errorf("delete DIDs of %s: %w", collection, err)
		}
		removed += len(dids)
		after = dids[len(dids)-1]
		if progress != nil {
			progress(removed)
		}
	}
	start, end := collectionPrefix(collection), collectionUpperBound(collection)
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.DeleteRangeCF(ix.rbc, start, end)
	// The count goes to zero with the range: the locks of an add of this collection.
	ix.acct.mu.RLock()
	unlock = ix.counts.lock(collection)
	ix.present.forgetCollection(collection) // what AddPairs put back during the cbr deletes
	ended = true
	for did := range ix.resets.end(collection) {
		wb.DeleteCF(ix.cbr, cbrKey(did, collection)) // written during the walk
	}
	commit := ix.counts.setZero(wb, collection)
	err := ix.db.Write(ix.syncWrite, wb) // synced: the cbr deletes before it too
	if err == nil {
		commit()
	}
	unlock()
	ix.acct.mu.RUnlock()
	if err != nil {
		return removed, fmt.Errorf("delete range of %s: %w", collection, err)
	}
	ix.db.CompactRangeCF(ix.rbc, grocksdb.Range{Start: start, Limit: end})
	return removed, nil
}
