package firehose

import (
	"fmt"

	"github.com/colindex/colindex/rocksindex"
)

// writes holds a batch's index writes that are not made yet: the pairs its commits add, and
// the pairs their proofs removed, each in one write at the end of the batch. Writes of
// different accounts touch different keys (and counts only add up), so they may land in any
// order; only one account's own adds and removals must keep stream order, so queueing one
// kind for an account first writes the other kind's queue if that account is in it. A
// stream with 1 commit in 10 a delete wrote its adds ten at a time when every delete wrote
// the queue first, and each removal alone: a third of the ingest rate (BenchmarkIngest).
//
// The whole batch's events finish together (the cursor passes them only after the last
// write), so a crash between two writes replays the batch, and replaying is idempotent.
type writes struct {
	f                 *Firehose
	adds, gone        []rocksindex.Pair
	addDIDs, goneDIDs map[string]struct{}
}

func newWrites(f *Firehose) *writes {
	return &writes{f: f, addDIDs: map[string]struct{}{}, goneDIDs: map[string]struct{}{}}
}

// add queues (collection, did) for each of colls, after did's queued removals.
func (w *writes) add(did string, colls []string) error {
	if len(colls) == 0 {
		return nil
	}
	if _, ok := w.goneDIDs[did]; ok {
		if err := w.writeGone(); err != nil {
			return err
		}
	}
	for _, c := range colls {
		w.adds = append(w.adds, rocksindex.Pair{Collection: c, DID: did})
	}
	w.addDIDs[did] = struct{}{}
	return nil
}

// beforeDelete writes did's queued adds before one of its record deletes is decided: the
// pair the proof may remove can be among them, and a delete the proof cannot settle goes to
// a check (a River job) that may run before the batch ends.
func (w *writes) beforeDelete(did string) error {
	if _, ok := w.addDIDs[did]; ok {
		return w.writeAdds()
	}
	return nil
}

// remove queues (collection, did) for each of colls, proved gone.
func (w *writes) remove(did string, colls []string) error {
	if len(colls) == 0 {
		return nil
	}
	if err := w.beforeDelete(did); err != nil {
		return err
	}
	for _, c := range colls {
		w.gone = append(w.gone, rocksindex.Pair{Collection: c, DID: did})
	}
	w.goneDIDs[did] = struct{}{}
	return nil
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
	clear(w.addDIDs)
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
