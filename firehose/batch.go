package firehose

import (
	"fmt"
	"slices"

	"github.com/colindex/colindex/rocksindex"
)

// writes holds a batch's index writes that are not made yet: the pairs its commits add, and
// the pairs their proofs removed, each in one write at the end of the batch. Writes of
// different pairs touch different keys (and counts only add up), so they may land in any
// order, except two writes of one pair, which must leave the index as they would in order:
//   - add, then removal: flush writes the batch's adds before its removals.
//   - removal, then add: the add takes the removal's place in the queue. That leaves the pair
//     present without a tombstone, counted once, as the two in order would: the add deletes a
//     tombstone it finds, and counts only a pair that was absent.
//
// So a record delete cuts no write short. The stream benchmark's deletes used to write the
// account's queued adds first, cutting the batch's one write into many; with 1 commit in 10
// a delete, BenchmarkIngest measured that as most of what deletes cost. Only a delete the
// proof cannot settle writes everything queued first (flush): its check is a River job that
// may run before the batch ends, and must find the index as the stream left it.
//
// The whole batch's events finish together (the cursor passes them only after the last
// write), so a crash between two writes replays the batch, and replaying is idempotent.
type writes struct {
	f          *Firehose
	adds, gone []rocksindex.Pair
	goneDIDs   map[string]struct{} // the DIDs in gone
}

func newWrites(f *Firehose) *writes {
	return &writes{f: f, goneDIDs: map[string]struct{}{}}
}

// add queues (collection, did) for each of colls, in place of did's queued removals of them.
func (w *writes) add(did string, colls []string) {
	if len(colls) == 0 {
		return
	}
	if _, ok := w.goneDIDs[did]; ok {
		w.gone = dropPairs(w.gone, did, colls)
	}
	for _, c := range colls {
		w.adds = append(w.adds, rocksindex.Pair{Collection: c, DID: did})
	}
}

// remove queues the removal of (collection, did) for each of colls, proved gone. Queued adds
// of the same pairs may stay: flush writes the adds first.
func (w *writes) remove(did string, colls []string) {
	for _, c := range colls {
		w.gone = append(w.gone, rocksindex.Pair{Collection: c, DID: did})
	}
	w.goneDIDs[did] = struct{}{}
}

// dropPairs removes from pairs every (collection, did) with collection in colls, in place.
func dropPairs(pairs []rocksindex.Pair, did string, colls []string) []rocksindex.Pair {
	return slices.DeleteFunc(pairs, func(p rocksindex.Pair) bool {
		return p.DID == did && slices.Contains(colls, p.Collection)
	})
}

// flush makes every queued write, before an event that must see them all.
func (w *writes) flush() error {
	if err := w.writeAdds(); err != nil {
		return err
	}
	return w.writeGone()
}

func (w *writes) writeAdds() error {
	if len(w.adds) == 0 {
		return nil
	}
	n, err := w.f.cfg.Index.AddPairs(w.adds)
	if err != nil {
		return fmt.Errorf("index %d adds: %w", len(w.adds), err)
	}
	w.f.metrics.FirehoseIndexAdds.Add(float64(n))
	w.adds = w.adds[:0]
	return nil
}

func (w *writes) writeGone() error {
	if len(w.gone) == 0 {
		return nil
	}
	n, err := w.f.cfg.Index.RemovePairs(w.gone)
	if err != nil {
		return fmt.Errorf("remove %d pairs proved gone: %w", len(w.gone), err)
	}
	w.f.st.pairsRemoved.Add(int64(n))
	w.f.metrics.FirehoseRemovals.WithLabelValues("proof").Add(float64(n))
	w.gone = w.gone[:0]
	clear(w.goneDIDs)
	return nil
}
