package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/source"
)

// Replica mode (COLINDEX_REPLICA_OF, docs/SCALING.md): this colindex copies another
// colindex's index (its peer) and then keeps it current from the same relay's firehose on
// its own. The order makes it exact:
//
//  1. The stream's cursor is seeded with the peer's durable cursor (its /_health) before
//     any page is read (over a saved live tail too, which marks no progress). Every pair the peer's index holds reflects at least the events up to
//     that cursor, and every later event is replayed here.
//  2. The backfill pages every collection the peer lists (/v1/listCollections), accepting
//     only pages of collections the peer has completed (the Colindex-Backfill header).
//  3. Pages never undo the stream: a pair the stream removed is not put back by a page, and
//     a deleted account never returns (the same rules as for any source).
//
// /_health answers 503 (status starting) until the copy is complete and the stream caught up.
type replica struct {
	peer     source.Source
	client   *source.Client
	backfill *jobs.Backfill
	follower *firehose.Firehose // nil: no stream (a copy that only follows its peer's backfill)
	log      *slog.Logger
	retry    time.Duration // between attempts while the peer cannot answer
}

// replicaActivation is the stream's OnUnknownActivation hook in replica mode (verify, a
// describeRepo check with the account's PDS), nil otherwise: a replica's peer left inactive
// accounts out of its pages, so an account that becomes active may have pairs missing here.
func replicaActivation(isReplica bool, verify func(context.Context, string) error) func(context.Context, string) error {
	if !isReplica {
		return nil
	}
	return verify
}

// peerWithoutGaps is a replica's jobs.Config.GapRepairReady (nil for a standalone): its
// refresh pages from the peer, so it waits until the peer has no open gap, whose missing adds
// its pages would copy.
func peerWithoutGaps(replicaOf string, client *source.Client) func(context.Context) error {
	if replicaOf == "" {
		return nil
	}
	peer, _ := source.Parse(replicaOf) // checked by loadConfig
	return func(ctx context.Context) error {
		h, err := client.Health(ctx, peer)
		if err != nil {
			return err
		}
		if h.Firehose != nil && h.Firehose.GapsOpen != 0 {
			return fmt.Errorf("the peer %s has %d open gap(s) in its stream (-1: it could not count them)", peer.Name, h.Firehose.GapsOpen)
		}
		return nil
	}
}

// errReplicaRelay stops serve: a replica that follows another relay than its peer would
// seed its cursor with a seq from another stream.
var errReplicaRelay = errors.New("replica: this colindex and its peer must follow the same relay")

// seed makes sure the stream has a cursor to start from: a saved one (a restart), or the
// peer's durable cursor. It waits for a peer that does not answer, or that has no durable
// cursor yet, and returns only errReplicaRelay or ctx's error.
func (r *replica) seed(ctx context.Context) error {
	if r.follower == nil {
		return nil
	}
	for {
		done, err := r.trySeed(ctx)
		if done || errors.Is(err, errReplicaRelay) {
			return err
		}
		r.log.Warn("replica: waiting for the peer's stream cursor", "peer", r.peer.Name, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.retry):
		}
	}
}

func (r *replica) trySeed(ctx context.Context) (bool, error) {
	// A saved live tail is no progress (no event applied since it was set): skipping to it
	// would skip what the copied pages miss, so the peer's cursor replaces it.
	if seq, ok, err := r.follower.SavedCursor(ctx); err != nil {
		return false, err
	} else if ok && seq != firehose.LiveTail {
		r.log.Info("replica: the stream resumes from its saved cursor", "cursor", seq)
		return true, nil
	}
	h, err := r.client.Health(ctx, r.peer)
	switch {
	case err != nil:
		return false, err
	case h.Firehose == nil:
		return false, fmt.Errorf("%w: the peer follows no firehose (run this replica without one, or give the peer one)", errReplicaRelay)
	case h.Firehose.URL != r.follower.Relay():
		return false, fmt.Errorf("%w: the peer follows %s, this colindex %s", errReplicaRelay, h.Firehose.URL, r.follower.Relay())
	case h.Firehose.Cursor < 0:
		return false, errors.New("the peer's stream has no durable cursor yet")
	case h.Firehose.GapsOpen != 0:
		// Its index may miss adds from before its cursor, which this stream would never see.
		return false, fmt.Errorf("the peer's stream has %d open gap(s) (-1: it could not count them); waiting for its refresh to repair them", h.Firehose.GapsOpen)
	}
	seeded, err := r.follower.SeedCursor(ctx, h.Firehose.Cursor)
	if err != nil {
		return false, err
	}
	r.log.Info("replica: the stream starts where the peer's index stands", "peer", r.peer.Name,
		"cursor", h.Firehose.Cursor, "seeded", seeded)
	return true, nil
}

// start starts (or resumes) the copy from the peer once the peer's collection list can be
// read (so discovery finds every collection the peer holds), retrying until a start is
// accepted. A live run (a restart mid-copy) is already the copy.
func (r *replica) start(ctx context.Context) {
	for {
		err := r.tryStart(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		r.log.Warn("replica: could not start the copy; trying again", "peer", r.peer.Name, "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.retry):
		}
	}
}

func (r *replica) tryStart(ctx context.Context) error {
	if _, err := r.client.Collections(ctx, r.peer); err != nil {
		return err
	}
	res, err := r.backfill.StartWith(ctx, r.peer, jobs.StartOptions{SourceNamed: true})
	switch {
	case errors.Is(err, jobs.ErrRunning):
		r.log.Info("replica: the copy is already running", "peer", r.peer.Name)
		return nil
	case err != nil:
		return err
	case res.SourceListError != "":
		// The run pages what it found; the rest comes from the stream or the next start.
		r.log.Warn("replica: the peer's collection list failed during the start", "error", res.SourceListError)
	}
	r.log.Info("replica: copying", "peer", r.peer.Name, "run_id", res.RunID,
		"collections", res.Collections, "already_complete", res.AlreadyComplete)
	return nil
}
