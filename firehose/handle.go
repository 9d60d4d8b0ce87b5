package firehose

import (
	"context"
	"fmt"
	"slices"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"

	"github.com/colindex/colindex/rocksindex"
)

// apply runs the handler of one event, counting it in t. An error means the event's effect is
// not in the index (the cursor must not pass it); bad input is not an error: it is logged,
// counted and skipped.
func (f *Firehose) apply(ctx context.Context, xev *events.XRPCStreamEvent, t *tally) (err error) {
	defer func() {
		// A handler bug must not take the process down; the event counts as not applied.
		if r := recover(); r != nil {
			err = fmt.Errorf("panic applying event: %v", r)
		}
	}()
	switch {
	case xev.RepoCommit != nil:
		return f.applyEvents(ctx, []*events.XRPCStreamEvent{xev}, t)
	case xev.RepoAccount != nil:
		return f.handleAccount(ctx, xev.RepoAccount, t)
	case xev.RepoSync != nil:
		return f.handleSync(ctx, xev.RepoSync, t)
	case xev.RepoIdentity != nil:
		f.observe(t, "identity", xev.RepoIdentity.Time)
		return nil
	case xev.RepoInfo != nil:
		return f.handleInfo(ctx, xev.RepoInfo, t)
	case xev.Error != nil:
		return f.handleErrorFrame(ctx, xev.Error, t)
	}
	return nil
}

// applyBatch applies events in stream order with as few index writes as it can (batch.go):
// the adds of a batch's commits go in one write, and the pairs their proofs removed in
// another, both made earlier only before an event that must see them (an #account or a
// #sync). Record deletes are decided from their commits' proofs (package proof); the pairs
// proved gone are removed, with a tombstone so no backfill page puts them back, and a delete
// the proof cannot settle keeps its pair, is counted, and goes to OnRecordDelete (a check
// with the account's PDS). The batch's events are counted only once it is applied (tally.go).
func (f *Firehose) applyBatch(ctx context.Context, evts []*events.XRPCStreamEvent) error {
	var t tally
	if err := f.applyEvents(ctx, evts, &t); err != nil {
		return err
	}
	f.count(&t)
	return nil
}

// applyEvents is applyBatch, counting in t.
func (f *Firehose) applyEvents(ctx context.Context, evts []*events.XRPCStreamEvent, t *tally) error {
	w := newWrites(f, t)
	lastTime := ""
	for _, xev := range evts {
		if xev.RepoCommit == nil {
			// An account event or a #sync sees every earlier add and removal; the others
			// (#identity, #info, error frames) do not touch the index.
			if xev.RepoAccount != nil || xev.RepoSync != nil {
				if err := w.flush(ctx); err != nil {
					return err
				}
			}
			if err := f.apply(ctx, xev, t); err != nil {
				return err
			}
			continue
		}
		evt := xev.RepoCommit
		colls, deletes, ok := f.commitChanges(evt, t)
		if !ok || len(deletes) == 0 {
			f.forgetDecision(evt) // one begun for delete ops that turned out invalid
		}
		if !ok {
			continue
		}
		w.add(evt.Repo, colls)
		if len(deletes) > 0 {
			w.recordsDeleted(evt, deletes)
		}
		t.commits++
		lastTime = evt.Time
	}
	f.observeTime(lastTime)
	return w.flush(ctx)
}

// commitChanges reads a commit's ops: the collections created or updated in, and those
// deleted from, each once. ok is false for a commit to skip whole (a bad DID).
func (f *Firehose) commitChanges(evt *comatproto.SyncSubscribeRepos_Commit, t *tally) (adds, deletes []string, ok bool) {
	t.event("commit") // the batch records the time of its last commit
	if _, err := syntax.ParseDID(evt.Repo); err != nil {
		f.bad(t, "invalid_did", "commit", evt.Seq, fmt.Errorf("repo %q: %w", evt.Repo, err))
		return nil, nil, false
	}
	for _, op := range evt.Ops {
		if op == nil {
			f.bad(t, "nil_op", "commit", evt.Seq, fmt.Errorf("nil op in commit of %s", evt.Repo))
			continue
		}
		coll, err := f.collections.collectionOf(op.Path)
		if err != nil {
			f.bad(t, "invalid_path", "commit", evt.Seq, fmt.Errorf("path %q of %s: %w", op.Path, evt.Repo, err))
			continue
		}
		switch op.Action {
		case "create", "update":
			adds = appendNew(adds, coll)
		case "delete":
			deletes = appendNew(deletes, coll)
		default:
			f.bad(t, "invalid_action", "commit", evt.Seq, fmt.Errorf("action %q on %s of %s", op.Action, op.Path, evt.Repo))
		}
	}
	return adds, deletes, true
}

// handleAccount applies an account's status: deleted removes every pair of the DID (final),
// any other inactive status hides the DID from listings, active lists it again.
func (f *Firehose) handleAccount(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Account, t *tally) error {
	f.observe(t, "account", evt.Time)
	if _, err := syntax.ParseDID(evt.Did); err != nil {
		f.bad(t, "invalid_did", "account", evt.Seq, fmt.Errorf("did %q: %w", evt.Did, err))
		return nil
	}
	named := ""
	if evt.Status != nil {
		named = *evt.Status
	}
	status := rocksindex.StatusOf(evt.Active, named)
	if status != rocksindex.StatusDeleted {
		if status == "" && f.cfg.OnUnknownActivation != nil {
			if err := f.unknownActivation(ctx, evt.Did); err != nil {
				return fmt.Errorf("account %d of %s: %w", evt.Seq, evt.Did, err)
			}
		}
		if err := f.cfg.Index.SetAccountStatus(evt.Did, status); err != nil {
			return fmt.Errorf("account %d of %s: %w", evt.Seq, evt.Did, err)
		}
		return nil
	}
	removed, already, err := f.cfg.Index.RemoveAccount(evt.Did)
	if err != nil {
		return fmt.Errorf("account %d of %s: %w", evt.Seq, evt.Did, err)
	}
	f.metrics.FirehoseRemovals.WithLabelValues("account_deletion").Add(float64(removed))
	if !already {
		f.st.accountsRemoved.Add(1)
		f.metrics.FirehoseAccountsRemoved.Inc()
		f.log.Info("account deleted: pairs removed", "did", evt.Did, "seq", evt.Seq, "pairs", removed)
	}
	return nil
}

// unknownActivation calls OnUnknownActivation for an account that becomes active while the
// index may miss its pairs (see Config): it was inactive here (a page read after the peer
// hid it added nothing), or it has no pair at all (inactive at the peer before the copy: no
// status here, and relays pass no commits of inactive accounts).
func (f *Firehose) unknownActivation(ctx context.Context, did string) error {
	st, err := f.cfg.Index.AccountStatus(did)
	if err != nil {
		return err
	}
	if st == "" {
		if colls, err := f.cfg.Index.CollectionsOf(did); err != nil || len(colls) > 0 {
			return err
		}
	}
	return f.cfg.OnUnknownActivation(ctx, did)
}

// handleSync passes a #sync (the account's repo was reset) to OnSync.
func (f *Firehose) handleSync(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Sync, t *tally) error {
	f.observe(t, "sync", evt.Time)
	if f.cfg.OnSync == nil {
		return nil
	}
	return f.cfg.OnSync(ctx, evt)
}

// handleInfo logs an #info frame. OutdatedCursor means events between the cursor and the
// relay's oldest retained event were never seen: a gap (reportGap).
func (f *Firehose) handleInfo(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Info, t *tally) error {
	f.observe(t, "info", "")
	msg := ""
	if evt.Message != nil {
		msg = *evt.Message
	}
	if evt.Name != "OutdatedCursor" {
		f.log.Info("relay #info", "name", evt.Name, "message", msg)
		return nil
	}
	what := "#info OutdatedCursor"
	if msg != "" {
		what += ": " + msg
	}
	after, err := f.reportGap(ctx, GapOutdatedCursor, what)
	if err != nil {
		return err
	}
	state := "gap recorded, see gaps"
	if f.cfg.OnGap == nil {
		state = "run colindex start --refresh"
	}
	f.setError(fmt.Sprintf("relay %s (events after seq %d missed: %s)", what, after, state))
	return nil
}

// reportGap tells OnGap that the events after the cursor this connection asked from were
// never applied, before the stream goes on past them, and returns that cursor. An error ends
// the connection, and the next one asks from the same cursor (and hears of the gap again).
// A follow reports a gap after a given cursor once: a relay that keeps answering the same
// cursor the same way (a held FutureCursor, reconnects of an idle stream) is one gap. A new
// follow (a cursor move, a lock taken over) reports it again, and Postgres dedupes it while
// its refresh has not started.
func (f *Firehose) reportGap(ctx context.Context, kind, what string) (int64, error) {
	after := f.st.dialedFrom.Load()
	f.log.Warn("relay: events after the cursor are gone; a gap in the stream", "after_seq", after, "frame", what)
	if f.cfg.OnGap == nil || f.st.gapAfter.Load() == after {
		return after, nil
	}
	if err := f.cfg.OnGap(ctx, after, kind, what); err != nil {
		return after, fmt.Errorf("record the gap after seq %d (%s): %w", after, what, err)
	}
	f.st.gapAfter.Store(after)
	return after, nil
}

// handleErrorFrame logs an error frame (FutureCursor, ConsumerTooSlow, …); the relay closes
// the connection after it and Run reconnects. FutureCursor is a gap too: the relay's sequence
// was reset (or it is another relay), so the events after the saved cursor that the old
// sequence still had are gone, whatever the operator moves the cursor to.
func (f *Firehose) handleErrorFrame(ctx context.Context, evt *events.ErrorFrame, t *tally) error {
	f.observe(t, "error", "")
	msg := "relay error frame " + describeErrorFrame(evt)
	f.log.Warn(msg)
	if evt.Error == "FutureCursor" {
		if _, err := f.reportGap(ctx, GapFutureCursor, "error frame FutureCursor: "+evt.Message); err != nil {
			return err
		}
	}
	f.setError(msg)
	return nil
}

// describeErrorFrame is an error frame's name and message, and the way out when the operator
// has to act.
func describeErrorFrame(evt *events.ErrorFrame) string {
	msg := evt.Error + " (" + evt.Message + ")"
	if evt.Error == "FutureCursor" {
		// Redialling from the same cursor gets the same answer, and no cursor the follower
		// could pick is safe: moving on skips events, and how many only the operator can know.
		msg += ": the saved cursor is ahead of the relay's newest event (its sequence was reset, or it is " +
			"another relay); move the cursor with `colindex firehose-cursor SEQ|live`"
	}
	return msg
}

// observe counts an event in t and, when it carries a time, records the lag.
func (f *Firehose) observe(t *tally, kind, evtTime string) {
	t.event(kind)
	f.observeTime(evtTime)
}

// observeTime records the newest event's time and the lag behind it.
func (f *Firehose) observeTime(evtTime string) {
	if evtTime == "" {
		return
	}
	t, err := syntax.ParseDatetimeLenient(evtTime)
	if err != nil {
		return
	}
	tt := t.Time()
	f.st.lastEventNanos.Store(tt.UnixNano())
	lag := max(time.Since(tt), 0)
	f.st.lagNanos.Store(int64(lag))
	f.metrics.FirehoseLagSeconds.Set(lag.Seconds())
}

// bad logs input that is skipped, and counts it in t.
func (f *Firehose) bad(t *tally, reason, kind string, seq int64, err error) {
	t.badInput(reason)
	f.log.Warn("skipping malformed "+kind, "reason", reason, "seq", seq, "error", err)
	f.setError(fmt.Sprintf("seq %d: skipped %s: %v", seq, kind, err))
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
