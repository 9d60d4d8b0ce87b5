package firehose

import (
	"context"
	"fmt"

	comatproto "github.com/bluesky-social/indigo/api/atproto"

	"github.com/colindex/colindex/firehose/proof"
	"github.com/colindex/colindex/rocksindex"
)

// writes holds a batch's index writes that are not made yet: the pairs its commits add, in
// one write, and its record deletes, whose verdicts (decide.go) are awaited only then, after
// the adds are written, so the applier does not stop at each delete for its proof. Writes of
// different pairs touch different keys (and counts only add up), so they may land in any
// order; one pair's writes must leave the index, its counts and its tombstones as they would
// in stream order. The flush writes, in this order:
//  1. every add;
//  2. every pair proved gone: one write, so a pair added earlier in the batch is removed;
//  3. the pairs the batch adds again after their last removal, which undo step 2 as the
//     add did in the stream (an add of an account marked deleted is dropped and leaves the
//     tombstone, as in the stream), and the pairs whose last verdict is Kept: the proof says
//     the account has a record there, so the pair is put back if the index lacks it. The
//     first is rare (a record deleted and another created in the same collection, a few
//     events apart); the second nearly always finds the pair there.
//
// A delete the proof cannot settle is handed to OnRecordDelete (a check with the account's
// PDS, a River job that may run at once) after those writes: the check finds the index with
// every write of the batch up to this flush, earlier and later ones, and asks the PDS, whose
// answer already reflects every commit the relay sent. An #account or #sync event flushes the
// queue first.
//
// The whole batch's events finish together (the cursor passes them only after the last
// write), so a crash between two writes replays the batch, and replaying is idempotent.
type writes struct {
	f       *Firehose
	t       *tally // counts the deletes left undecided
	adds    []rocksindex.Pair
	deletes []pendingDelete // in stream order
}

// pendingDelete is a commit's record deletes, waiting for their verdicts.
type pendingDelete struct {
	evt   *comatproto.SyncSubscribeRepos_Commit
	colls []string // the collections it deleted from
	adds  int      // how many adds were queued before it
}

// unsettled is a collection a commit deleted from that its proof could not settle.
type unsettled struct {
	evt  *comatproto.SyncSubscribeRepos_Commit
	coll string
}

func newWrites(f *Firehose, t *tally) *writes { return &writes{f: f, t: t} }

// add queues (collection, did) for each of colls.
func (w *writes) add(did string, colls []string) {
	for _, c := range colls {
		w.adds = append(w.adds, rocksindex.Pair{Collection: c, DID: did})
	}
}

// recordsDeleted queues evt's record deletes from colls, to be decided at the flush.
func (w *writes) recordsDeleted(evt *comatproto.SyncSubscribeRepos_Commit, colls []string) {
	w.deletes = append(w.deletes, pendingDelete{evt: evt, colls: colls, adds: len(w.adds)})
}

// flush makes every queued write (adds, removals, adds again) and then hands over the
// deletes the proofs could not settle.
func (w *writes) flush(ctx context.Context) error {
	lastAdd := w.lastAdds()
	if err := w.writeAdds(); err != nil {
		return err
	}
	if len(w.deletes) == 0 {
		return nil
	}
	var gone []rocksindex.Pair
	var open []unsettled
	lastGone := map[rocksindex.Pair]int{}  // each removed pair's last removal, as a place in adds
	lastKept := map[rocksindex.Pair]bool{} // pairs whose last verdict in the batch is Kept
	for _, d := range w.deletes {
		verdicts, err := w.f.verdicts(ctx, d.evt)
		if err != nil {
			return err
		}
		for _, coll := range d.colls {
			v := verdicts[coll]
			switch v.Outcome {
			case proof.Gone:
				p := rocksindex.Pair{Collection: coll, DID: d.evt.Repo}
				gone = append(gone, p)
				lastGone[p] = d.adds
				delete(lastKept, p)
			case proof.Kept:
				lastKept[rocksindex.Pair{Collection: coll, DID: d.evt.Repo}] = true
			default:
				w.t.undecidedDelete(v.Reason)
				open = append(open, unsettled{d.evt, coll})
			}
		}
	}
	w.deletes = w.deletes[:0]
	if err := w.writeGone(gone); err != nil {
		return err
	}
	var again []rocksindex.Pair
	for p, at := range lastGone {
		if i, ok := lastAdd[p]; ok && i >= at {
			again = append(again, p)
			delete(lastKept, p)
		}
	}
	// A Kept verdict proves the account still has a record of the collection: the pair is
	// put back if the index lacks it (a removal that was wrong, or a create it never saw),
	// unless a later delete of the batch proved it gone. Almost always it is there already,
	// and the add costs a lookup in the presence cache.
	for p := range lastKept {
		again = append(again, p)
	}
	if len(again) > 0 {
		n, err := w.f.cfg.Index.AddPairs(again)
		if err != nil {
			return fmt.Errorf("index %d pairs added again after their removal or proved kept: %w", len(again), err)
		}
		w.f.metrics.FirehoseIndexAdds.Add(float64(n))
	}
	if w.f.cfg.OnRecordDelete == nil {
		return nil
	}
	for _, u := range open {
		if err := w.f.cfg.OnRecordDelete(ctx, u.evt, u.coll); err != nil {
			return fmt.Errorf("record delete in %s, commit %d of %s: %w", u.coll, u.evt.Seq, u.evt.Repo, err)
		}
	}
	return nil
}

// lastAdds maps each queued add of an account with a queued delete to its last place in
// adds (nil when no delete is queued).
func (w *writes) lastAdds() map[rocksindex.Pair]int {
	if len(w.deletes) == 0 {
		return nil
	}
	deleting := make(map[string]struct{}, len(w.deletes))
	for _, d := range w.deletes {
		deleting[d.evt.Repo] = struct{}{}
	}
	last := map[rocksindex.Pair]int{}
	for i, p := range w.adds {
		if _, ok := deleting[p.DID]; ok {
			last[p] = i
		}
	}
	return last
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

func (w *writes) writeGone(gone []rocksindex.Pair) error {
	if len(gone) == 0 {
		return nil
	}
	n, err := w.f.cfg.Index.RemovePairs(gone)
	if err != nil {
		return fmt.Errorf("remove %d pairs proved gone: %w", len(gone), err)
	}
	w.f.st.pairsRemoved.Add(int64(n))
	w.f.metrics.FirehoseRemovals.WithLabelValues("proof").Add(float64(n))
	return nil
}
