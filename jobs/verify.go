package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

const (
	// verifyRetryCap caps the backoff between attempts (1 s, 2 s, 4 s, … with jitter).
	verifyRetryCap = 15 * time.Minute
	// maxFollowUps bounds the chain of follow-up checks one enqueue may walk (see enqueueVerify).
	maxFollowUps = 8
	// followUpDelay is how long a follow-up check waits before it may run.
	followUpDelay = 5 * time.Second
	// askAgainAfter is how long a check whose answer the stream overtook waits to ask again.
	askAgainAfter = time.Second
)

// EnqueueVerifyCollection asks for a check, with did's PDS, of whether did has any record
// left in collection: the firehose's OnRecordDelete for deletes its proof could not settle.
// Checks are unique per (did, collection) while live, so a burst of deletes costs one.
func (b *Backfill) EnqueueVerifyCollection(ctx context.Context, did, collection string) error {
	return b.enqueueVerify(ctx, func(after int64) river.JobArgs {
		return VerifyCollectionArgs{DID: did, Collection: collection, After: after}
	})
}

// EnqueueVerifyRepo asks for did's collections to be re-learned from its PDS and the index
// reconciled with them: the firehose's OnSync. Unique per did while live.
func (b *Backfill) EnqueueVerifyRepo(ctx context.Context, did string) error {
	return b.enqueueVerify(ctx, func(after int64) river.JobArgs {
		return VerifyRepoArgs{DID: did, After: after}
	})
}

// enqueueVerify inserts a check. A live duplicate that has not started answers for this
// event too. One that is running may have asked the PDS before this event happened, so the
// event gets a follow-up keyed by the running job's ID (After); if that one runs as well,
// the next link, at most maxFollowUps deep (one per concurrently running worker is enough).
// tags go on every job it inserts (a sweep waits for the checks it asked for by its tag); a
// live duplicate without them gets a follow-up that has them, whatever its state.
func (b *Backfill) enqueueVerify(ctx context.Context, args func(after int64) river.JobArgs, tags ...string) error {
	var after int64
	for range maxFollowUps {
		a := args(after)
		opts := &river.InsertOpts{MaxAttempts: b.verifyMaxAttempts, Tags: tags}
		if after != 0 {
			// Scheduled, not available: the follow-up waits behind the running check
			// instead of starting beside it at once, and later events dedupe against it.
			opts.ScheduledAt = time.Now().Add(followUpDelay)
		}
		res, err := b.River.Insert(ctx, a, opts)
		if err != nil {
			return fmt.Errorf("enqueue %s: %w", a.Kind(), err)
		}
		if !res.UniqueSkippedAsDuplicate {
			return nil
		}
		if len(tags) > 0 {
			// A sweep waits for the checks that carry its tag: one already live without it
			// (a stream's) gets a tagged follow-up, which dedupes only against its own.
			if !containsAll(res.Job.Tags, tags) {
				after = res.Job.ID
				continue
			}
			return nil
		}
		if res.Job.State != rivertype.JobStateRunning {
			return nil
		}
		after = res.Job.ID
	}
	return nil
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// verifier is what both verify workers share.
type verifier struct {
	index   *rocksindex.Index
	pds     *pdsClient
	log     *slog.Logger
	metrics *metrics.Metrics
}

// VerifyCollectionWorker checks one (did, collection) with did's PDS: no record left removes
// the pair (and leaves its tombstone); any record keeps it. A failure removes nothing.
type VerifyCollectionWorker struct {
	river.WorkerDefaults[VerifyCollectionArgs]
	v *verifier
}

func (w *VerifyCollectionWorker) Timeout(*river.Job[VerifyCollectionArgs]) time.Duration {
	return verifyJobTimeout(w.v)
}

func (w *VerifyCollectionWorker) NextRetry(job *river.Job[VerifyCollectionArgs]) time.Time {
	return verifyNextRetry(job.Attempt)
}

func (w *VerifyCollectionWorker) Work(ctx context.Context, job *river.Job[VerifyCollectionArgs]) error {
	did, coll := job.Args.DID, job.Args.Collection
	err := w.work(ctx, did, coll)
	w.v.countVerify(VerifyCollectionKind, err)
	return err
}

func (w *VerifyCollectionWorker) work(ctx context.Context, did, coll string) error {
	d, err := syntax.ParseDID(did)
	if err != nil {
		return river.JobCancel(fmt.Errorf("verify_collection: %w", err))
	}
	if _, err := syntax.ParseNSID(coll); err != nil {
		return river.JobCancel(fmt.Errorf("verify_collection: %w", err))
	}
	if done, err := w.v.skipDeleted(VerifyCollectionKind, did); done || err != nil {
		return err
	}
	// The answer is of its moment: a create the stream applies after it and before the
	// removal below would be undone by it, so the removal goes through only if nothing wrote
	// the pair in between (rocksindex/since.go); else the PDS is asked again. A create
	// applied after the removal puts the pair back, as any create does.
	since := w.v.index.StampOf(did)
	has, err := w.v.pds.hasRecords(ctx, d, coll)
	if err != nil {
		return w.v.accountState(VerifyCollectionKind, "pds_check", &since, err)
	}
	if has {
		w.v.metrics.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "kept").Inc()
		return nil
	}
	n, err := w.v.index.RemovePairsSince([]rocksindex.Pair{{Collection: coll, DID: did}}, &since)
	if err != nil {
		return w.v.askAgain(VerifyCollectionKind, err)
	}
	w.v.metrics.FirehoseRemovals.WithLabelValues("pds_check").Add(float64(n))
	w.v.metrics.VerifyOutcomes.WithLabelValues(VerifyCollectionKind, "removed").Inc()
	w.v.log.InfoContext(ctx, "PDS lists no record: pair removed", "did", did, "collection", coll, "held", n == 1)
	return nil
}

// VerifyRepoWorker reconciles one account's pairs with its PDS's describeRepo after a
// #sync: collections the index has and the PDS does not list are removed (with tombstones),
// collections the PDS lists and the index lacks are added. A failure changes nothing.
type VerifyRepoWorker struct {
	river.WorkerDefaults[VerifyRepoArgs]
	v *verifier
}

func (w *VerifyRepoWorker) Timeout(*river.Job[VerifyRepoArgs]) time.Duration {
	return verifyJobTimeout(w.v)
}

func (w *VerifyRepoWorker) NextRetry(job *river.Job[VerifyRepoArgs]) time.Time {
	return verifyNextRetry(job.Attempt)
}

func (w *VerifyRepoWorker) Work(ctx context.Context, job *river.Job[VerifyRepoArgs]) error {
	err := w.work(ctx, job.Args.DID)
	w.v.countVerify(VerifyRepoKind, err)
	return err
}

func (w *VerifyRepoWorker) work(ctx context.Context, did string) error {
	d, err := syntax.ParseDID(did)
	if err != nil {
		return river.JobCancel(fmt.Errorf("verify_repo: %w", err))
	}
	if done, err := w.v.skipDeleted(VerifyRepoKind, did); done || err != nil {
		return err
	}
	since := w.v.index.StampOf(did) // as in verify_collection: the writes below are guarded
	listed, err := w.v.pds.collections(ctx, d)
	if err != nil {
		return w.v.accountState(VerifyRepoKind, "sync", &since, err)
	}
	held, err := w.v.index.CollectionsOf(did)
	if err != nil {
		return err
	}
	remove, add := reconcile(did, held, listed)
	// Removals first, adds second: each is one write, and neither depends on the other. A
	// stream write of one of the pairs since the question makes that write ErrChanged, and
	// the check runs again (reconciling twice changes nothing more).
	removed, err := w.v.index.RemovePairsSince(remove, &since)
	if err != nil {
		return w.v.askAgain(VerifyRepoKind, err)
	}
	w.v.metrics.FirehoseRemovals.WithLabelValues("sync").Add(float64(removed)) // made, whatever follows
	added, err := w.v.index.AddPairsSince(add, &since)
	if err != nil {
		return w.v.askAgain(VerifyRepoKind, err)
	}
	w.v.metrics.VerifyAdds.Add(float64(added))
	w.v.metrics.VerifyOutcomes.WithLabelValues(VerifyRepoKind, "reconciled").Inc()
	if len(remove)+len(add) > 0 {
		w.v.log.InfoContext(ctx, "repo re-learned from its PDS", "did", did, "removed", removed, "added", added)
	}
	return nil
}

// reconcile compares the index's collections of one account with its PDS's list: the pairs
// to remove (held, not listed) and to add (listed, a valid NSID, not held).
func reconcile(did string, held, listed []string) (remove, add []rocksindex.Pair) {
	on := make(map[string]bool, len(listed))
	for _, c := range listed {
		on[c] = true
	}
	have := make(map[string]bool, len(held))
	for _, c := range held {
		have[c] = true
		if !on[c] {
			remove = append(remove, rocksindex.Pair{Collection: c, DID: did})
		}
	}
	for _, c := range listed {
		if have[c] {
			continue
		}
		if _, err := syntax.ParseNSID(c); err != nil {
			continue // not a collection name: nothing the index could hold
		}
		have[c] = true // a PDS listing a name twice adds it once
		add = append(add, rocksindex.Pair{Collection: c, DID: did})
	}
	return remove, add
}

// skipDeleted reports whether did is already deleted in the index: nothing is left to check,
// and nothing may be added back.
func (v *verifier) skipDeleted(kind, did string) (bool, error) {
	st, err := v.index.AccountStatus(did)
	if err != nil {
		return false, err
	}
	if st != rocksindex.StatusDeleted {
		return false, nil
	}
	v.metrics.VerifyOutcomes.WithLabelValues(kind, "skipped").Inc()
	return true, nil
}

// accountState applies a PDS error that names the account's state, and returns every other
// error unchanged (River retries it; nothing was removed). RepoNotFound from the account's
// own PDS, as named by its current DID document, means the account is gone: final, as an
// #account deleted event. Deactivated, taken down or suspended hide it and keep its pairs.
func (v *verifier) accountState(kind, cause string, since *rocksindex.Since, err error) error {
	did := since.DID
	status := ""
	switch {
	case errors.Is(err, errRepoNotFound):
		removed, _, rerr := v.index.RemoveAccountSince(since)
		if rerr != nil {
			return v.askAgain(kind, rerr)
		}
		v.metrics.FirehoseRemovals.WithLabelValues(cause).Add(float64(removed))
		v.metrics.VerifyOutcomes.WithLabelValues(kind, "account_deleted").Inc()
		v.log.Info("PDS: repo not found; account removed", "did", did, "pairs", removed, "check", kind)
		return nil
	case errors.Is(err, errRepoDeactivated):
		status = "deactivated"
	case errors.Is(err, errRepoTakendown):
		status = "takendown"
	case errors.Is(err, errRepoSuspended):
		status = "suspended"
	default:
		return err
	}
	if err := v.index.SetAccountStatusSince(status, since); err != nil {
		return v.askAgain(kind, err)
	}
	v.metrics.VerifyOutcomes.WithLabelValues(kind, "account_inactive").Inc()
	return nil
}

// askAgain turns rocksindex.ErrChanged (the stream wrote a pair or the status the check would
// write, after the PDS was asked)
// into a new question a second later, which River does not count as a failed attempt;
// every other error is returned as it is.
func (v *verifier) askAgain(kind string, err error) error {
	if !errors.Is(err, rocksindex.ErrChanged) {
		return err
	}
	v.metrics.VerifyOutcomes.WithLabelValues(kind, "changed").Inc()
	return river.JobSnooze(askAgainAfter)
}

func (v *verifier) countVerify(kind string, err error) {
	result := "done"
	var snoozed *river.JobSnoozeError
	if err != nil && !errors.As(err, &snoozed) { // asked again: not a failure
		result = "failed"
	}
	v.metrics.VerifyJobs.WithLabelValues(kind, result).Inc()
}

// verifyJobTimeout covers a DID resolution and a PDS request, each bounded by the request
// timeout, plus a wait for the host's rate cap.
func verifyJobTimeout(v *verifier) time.Duration {
	return 2*v.pds.http.Timeout + time.Minute
}

// verifyNextRetry backs off exponentially with jitter: 1 s, 2 s, 4 s, … capped at verifyRetryCap.
func verifyNextRetry(attempt int) time.Time {
	backoff := min(time.Second<<min(attempt, 20), verifyRetryCap)
	return time.Now().Add(backoff/2 + rand.N(backoff/2+1))
}
