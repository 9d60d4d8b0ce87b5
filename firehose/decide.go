package firehose

import (
	"context"
	"runtime"

	comatproto "github.com/bluesky-social/indigo/api/atproto"

	"github.com/colindex/colindex/firehose/proof"
)

// Deciding a record delete from its proof costs 13–15 µs (decoding the commit's blocks,
// inverting its ops and hashing the result; BenchmarkDecide, BenchmarkIngest), several times
// applying an add. It depends on
// the commit alone, so it starts as soon as the commit is queued, on as many goroutines as
// there are cores, and the applier, which must keep stream order, only waits for the verdict
// when it gets there. Measured with the stream benchmark (1 commit in 10 a delete), when a
// decision cost 70 µs: deciding in the applier cost 31% of the ingest rate.
//
// The deciders are goroutines that live as long as the connection's scheduler, not one per
// commit: a new goroutine starts on a small stack, and a decision's decoding grew it, copying
// it each time (runtime.newstack and copystack were a third of deciding's CPU in the stream
// benchmark's profile).

// decision is a verdict being computed ahead of the applier.
type decision struct {
	ctx      context.Context
	evt      *comatproto.SyncSubscribeRepos_Commit
	done     chan struct{}
	verdicts map[string]proof.Verdict
}

// deciders computes decisions on GOMAXPROCS goroutines until stop is closed. queue holds
// more than the scheduler can have outstanding (maxPending queued, as many in the batch
// being applied), so a send never waits; should it ever find the queue full, the decision
// gets a goroutine of its own instead.
type deciders struct {
	f     *Firehose
	queue chan *decision
}

func (f *Firehose) startDeciders(stop <-chan struct{}) *deciders {
	ds := &deciders{f: f, queue: make(chan *decision, 2*maxPending)}
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for {
				select {
				case d := <-ds.queue:
					ds.decide(d)
				case <-stop:
					return // the applier has returned: nobody waits for the rest
				}
			}
		}()
	}
	return ds
}

func (ds *deciders) decide(d *decision) {
	defer close(d.done)
	if d.ctx.Err() == nil { // else the applier will not ask: the connection is over
		d.verdicts = proof.DecideWith(d.ctx, d.evt, ds.f.collections.collectionOf)
	}
}

// ahead starts deciding evt's deletes, if it has any.
func (ds *deciders) ahead(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit) {
	if !hasDelete(evt) {
		return
	}
	d := &decision{ctx: ctx, evt: evt, done: make(chan struct{})}
	ds.f.decisions.Store(evt, d)
	select {
	case ds.queue <- d:
	default:
		go ds.decide(d)
	}
}

// verdicts returns evt's verdicts: the ones decided ahead, or decided now.
func (f *Firehose) verdicts(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit) (map[string]proof.Verdict, error) {
	v, ok := f.decisions.LoadAndDelete(evt)
	if !ok {
		return proof.DecideWith(ctx, evt, f.collections.collectionOf), nil
	}
	d := v.(*decision)
	select {
	case <-d.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if d.verdicts == nil { // abandoned when its context ended
		return proof.DecideWith(ctx, evt, f.collections.collectionOf), nil
	}
	return d.verdicts, nil
}

// forgetDecision drops evt's decision, if one was begun and will not be asked for.
func (f *Firehose) forgetDecision(evt *comatproto.SyncSubscribeRepos_Commit) {
	if hasDelete(evt) {
		f.decisions.Delete(evt)
	}
}

func hasDelete(evt *comatproto.SyncSubscribeRepos_Commit) bool {
	for _, op := range evt.Ops {
		if op != nil && op.Action == "delete" {
			return true
		}
	}
	return false
}
