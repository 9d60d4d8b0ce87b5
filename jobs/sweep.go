package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/source"
)

// An account sweep brings the index in line with what a relay holds about every account, in
// two walks. The relay's account list (com.atproto.sync.listRepos, sweep_relay.go) holds its
// active accounts only (indigo's does): hidden ones it lists are listed again and re-learned
// from their PDS (the pages of their collections may have been read while they were hidden),
// and with a rev floor (a gap's sweep) every listed account whose repo changed at or after it
// is re-learned from its PDS (a verify_repo check: its collections both ways), which recovers
// the record deletes and the adds the gap carried. Then the index's own accounts: each one the
// relay did not list is asked about (getRepoStatus), and a deleted one loses its pairs (the
// backfill's source, like bsky.network's listReposByCollection, still lists accounts deleted
// before the stream began, or in a gap of it), an inactive one (taken down, suspended,
// deactivated, …) is hidden.
//
// Each status is written only if nothing of the account was written after the page was asked
// for (rocksindex.ApplyStatusesSince): the stream's word is then the newer. A sweep is one
// River job that walks for a slice of time and snoozes between slices; its cursors and counts
// are in account_sweeps, advanced after each stretch's writes are synced, so a crash applies
// one stretch again (which changes nothing twice). Its checks carry its tag; once both walks
// are through it waits for them, then finishes, and a gap's sweep lets its gap close.

// AccountSweepKind is the River kind of a sweep.
const AccountSweepKind = "account_sweep"

const (
	// sweepPageLimit is listRepos' largest page.
	sweepPageLimit = 1000
	// sweepSlice is how long one run of the job walks pages before it snoozes: it never holds
	// a verify worker for long, and its timeout stays short.
	sweepSlice = 30 * time.Second
	// sweepCheckWait is how long a walked sweep waits before it looks at its checks again.
	sweepCheckWait = 10 * time.Second
	// sweepRevMargin widens a gap's rev floor: a rev is the PDS's clock, which may run
	// behind, and a commit reaches the relay a little after its PDS made it.
	sweepRevMargin = time.Hour
	// recentSweeps is how many of the latest sweeps the status lists beside the unfinished.
	recentSweeps = 5
	// unlistedScan is how many of the index's accounts one step of the unlisted walk reads,
	// and unlistedAsks how many of them at most it asks the relay about (sweepAskers at once): a
	// step is saved as a whole, so it must end well within the job's timeout.
	unlistedScan = 1000
	unlistedAsks = 100
)

// sweepMaxAttempts bounds a sweep's failed attempts over its whole life (a page of 40,000 may
// fail now and then); the backoff grows with the failures in a row (NextRetry), capped at
// verifyRetryCap. Should they run out, the sweep stays unfinished (its gap open) and
// colindex retry resumes it.
const sweepMaxAttempts = 1000

// AccountSweepArgs runs one sweep. Unique per sweep while live.
type AccountSweepArgs struct {
	SweepID int64 `json:"sweep_id" river:"unique"`
}

func (AccountSweepArgs) Kind() string { return AccountSweepKind }

func (AccountSweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueueVerify,
		MaxAttempts: sweepMaxAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// sweepTag marks the checks a sweep asked for.
func sweepTag(id int64) string { return fmt.Sprintf("sweep-%d", id) }

// AccountSweepWorker runs a sweep: pages for a slice of time, then a snooze; once walked, a
// wait for its checks.
type AccountSweepWorker struct {
	river.WorkerDefaults[AccountSweepArgs]
	b *Backfill
}

// Timeout covers a slice and the step that began before its end: a page, or unlistedAsks
// questions, each of which the source client bounds.
func (w *AccountSweepWorker) Timeout(*river.Job[AccountSweepArgs]) time.Duration {
	return w.slice() + 5*time.Minute
}

// NextRetry backs off with the failures in a row, not with every error the sweep has had.
func (w *AccountSweepWorker) NextRetry(job *river.Job[AccountSweepArgs]) time.Time {
	sw, err := queries.SweepGet(context.Background(), w.b.Pool, job.Args.SweepID)
	if err != nil {
		return verifyNextRetry(job.Attempt)
	}
	return verifyNextRetry(int(sw.Failures))
}

func (w *AccountSweepWorker) slice() time.Duration { return cmp.Or(w.b.sweepSlice, sweepSlice) }

func (w *AccountSweepWorker) Work(ctx context.Context, job *river.Job[AccountSweepArgs]) error {
	sw, err := queries.SweepGet(ctx, w.b.Pool, job.Args.SweepID)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("account sweep %d is not recorded (reopen-all forgets sweeps)", job.Args.SweepID))
	}
	if err != nil {
		return fmt.Errorf("read account sweep %d: %w", job.Args.SweepID, err)
	}
	switch {
	case sw.FinishedAt != nil:
		return nil
	case sw.UnlistedAt != nil:
		return w.finish(ctx, sw)
	}
	base, err := relayHTTPBase(sw.Relay)
	if err != nil {
		return river.JobCancel(err)
	}
	step, then := w.page, "every page applied; asking the relay about the accounts it did not list"
	if sw.WalkedAt != nil {
		if wait, err := w.refreshFirst(ctx, sw); wait || err != nil {
			return cmp.Or(err, river.JobSnooze(cmp.Or(w.b.gapRepairWait, gapRepairWait)))
		}
		step, then = w.unlisted, "every account the relay did not list asked about; waiting for the checks"
		if wait, err := w.walkBegins(ctx, &sw); wait || err != nil {
			return cmp.Or(err, river.JobSnooze(time.Second))
		}
	}
	end := time.Now().Add(w.slice())
	for time.Now().Before(end) {
		done, err := step(ctx, &sw, base)
		if errors.Is(err, errSweepMovedOn) {
			return river.JobSnooze(time.Second) // read the sweep again
		}
		var limited *source.RateLimitedError
		if errors.As(err, &limited) {
			// The relay asked to wait (429), or its host's rate cap is busy: not a failure.
			return river.JobSnooze(max(limited.Wait, time.Second))
		}
		if err != nil {
			if serr := queries.SweepFailed(context.WithoutCancel(ctx), w.b.Pool, pgstore.SweepFailedParams{ID: sw.ID, LastError: err.Error()}); serr != nil {
				err = errors.Join(err, serr)
			}
			err = fmt.Errorf("account sweep %d: %w", sw.ID, err)
			if errors.Is(err, errNoAccountList) {
				return river.JobCancel(err) // unfinished, its last error says why; a gap stays open
			}
			return err
		}
		if done {
			w.b.logger.InfoContext(ctx, "account sweep: "+then, "sweep", sw.ID)
			return river.JobSnooze(time.Millisecond)
		}
	}
	return river.JobSnooze(time.Millisecond) // the next slice, after whatever else is queued
}

// refreshFirst says whether a gap's sweep must wait for the gap's refresh before it walks the
// index's accounts: the refresh's pages may bring in an account the relay no longer lists (one
// that joined and was deleted in the gap), and the walk must come after to ask about it.
func (w *AccountSweepWorker) refreshFirst(ctx context.Context, sw pgstore.AccountSweep) (bool, error) {
	if sw.GapID == nil || sw.UnlistedCursor != "" {
		return false, nil
	}
	gap, err := queries.GapGet(ctx, w.b.Pool, *sw.GapID)
	if err != nil {
		return false, fmt.Errorf("account sweep %d: read its gap: %w", sw.ID, err)
	}
	if gap.RepairRunID == nil {
		return true, nil
	}
	return anyLive(ctx, w.b.River, RunKind, PageKind, ResetKind)
}

// walkBegins records when the walk of the index's accounts began, and holds its first read
// until no page job that began before then is still running (wait): a page stamped before
// then is in the walk, so the sweep after the backfill need not follow it (sweep_after.go). A
// page stamps its row when its transaction begins, before its index write lands, and its job
// was running from earlier still. The time is saved first and kept, so pages that begin
// later never hold the walk (a backfill keeps some page running all the time); one that ends
// during the wait counts as after the walk began, and may call for one more sweep.
func (w *AccountSweepWorker) walkBegins(ctx context.Context, sw *pgstore.AccountSweep) (bool, error) {
	if sw.UnlistedBeganAt == nil {
		began, err := queries.SweepUnlistedBegin(ctx, w.b.Pool, sw.ID)
		if err != nil {
			return false, fmt.Errorf("account sweep %d: %w", sw.ID, err)
		}
		sw.UnlistedBeganAt = &began
	}
	if sw.UnlistedCursor != "" {
		return false, nil // read already
	}
	res, err := w.b.River.JobList(ctx, river.NewJobListParams().Kinds(PageKind).States(rivertype.JobStateRunning).First(1000))
	if err != nil {
		return false, fmt.Errorf("account sweep %d: list running pages: %w", sw.ID, err)
	}
	for _, j := range res.Jobs {
		if j.AttemptedAt == nil || !j.AttemptedAt.After(*sw.UnlistedBeganAt) {
			return true, nil
		}
	}
	return false, nil
}

// errSweepMovedOn: the sweep's row moved past the stretch this run applied (a run of the job
// that River rescued while this one was still at work): nothing is lost, the next run reads
// where it stands.
var errSweepMovedOn = errors.New("the sweep moved on without this run")

// finish finishes a walked sweep once none of its checks is live, and closes its gap if that
// was all the gap waited for. The checks given up are counted once none is live, and none
// must be live after the count: one an operator retried meanwhile is waited for.
func (w *AccountSweepWorker) finish(ctx context.Context, sw pgstore.AccountSweep) error {
	checking := func() (bool, error) {
		res, err := w.b.River.JobList(ctx, river.NewJobListParams().Kinds(VerifyRepoKind).States(liveStates...).
			Where("tags @> @tags", river.NamedArgs{"tags": []string{sweepTag(sw.ID)}}).First(1))
		if err != nil {
			return false, fmt.Errorf("account sweep %d: list its checks: %w", sw.ID, err)
		}
		return len(res.Jobs) > 0, nil
	}
	live, err := checking()
	var givenUp int64
	if err == nil && !live {
		if givenUp, err = w.checksGivenUp(ctx, sw.ID); err == nil {
			live, err = checking()
		}
	}
	if err != nil {
		return err
	}
	if live {
		return river.JobSnooze(cmp.Or(w.b.gapRepairWait, sweepCheckWait)) // tests shorten both waits
	}
	if err := w.b.Index.ForgetListed(sw.ID); err != nil {
		return fmt.Errorf("account sweep %d: %w", sw.ID, err)
	}
	err = pgx.BeginFunc(ctx, w.b.Pool, func(tx pgx.Tx) error {
		if _, err := queries.SweepFinish(ctx, tx, pgstore.SweepFinishParams{ID: sw.ID, ChecksGivenUp: givenUp}); err != nil {
			return err
		}
		return closeGaps(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("account sweep %d: finish: %w", sw.ID, err)
	}
	w.b.logger.InfoContext(ctx, "account sweep finished", "sweep", sw.ID, "repos", sw.Repos,
		"statuses_changed", sw.StatusesChanged, "accounts_removed", sw.AccountsRemoved, "checks", sw.ChecksQueued,
		"checks_given_up", givenUp)
	return nil
}

// checksGivenUp counts the accounts whose check of the sweep River gave up on: discarded
// once its attempts were spent (a PDS down for hours), or cancelled by an operator. The
// index keeps what it had for them, which the sweep's record says instead of passing for
// done. An account asked about twice (a stretch applied again after a crash) counts once.
func (w *AccountSweepWorker) checksGivenUp(ctx context.Context, id int64) (int64, error) {
	jobs, err := listAll(ctx, w.b.River, river.NewJobListParams().Kinds(VerifyRepoKind).
		States(rivertype.JobStateDiscarded, rivertype.JobStateCancelled).
		Where("tags @> @tags", river.NamedArgs{"tags": []string{sweepTag(id)}}))
	if err != nil {
		return 0, fmt.Errorf("account sweep %d: its checks given up: %w", id, err)
	}
	dids := map[string]struct{}{}
	for _, j := range jobs {
		var args VerifyRepoArgs
		if err := json.Unmarshal(j.EncodedArgs, &args); err != nil {
			return 0, fmt.Errorf("account sweep %d: check %d: %w", id, j.ID, err)
		}
		dids[args.DID] = struct{}{}
	}
	return int64(len(dids)), nil
}

// page fetches and applies the page after sw.Cursor, and records it; done once it was the
// last page.
func (w *AccountSweepWorker) page(ctx context.Context, sw *pgstore.AccountSweep, base string) (bool, error) {
	// Read before the page is asked for: a status the stream writes after it is the newer.
	since := w.b.Index.StampOf("")
	out, err := fetchAccounts(ctx, w.b.sweepSource, base, sw.Cursor)
	if err != nil {
		return false, err
	}
	if w.b.afterSweepAnswer != nil {
		w.b.afterSweepAnswer()
	}
	next := ""
	if out.Cursor != nil {
		next = *out.Cursor
	}
	if next != "" && next == sw.Cursor {
		return false, fmt.Errorf("the relay answered cursor %q with the same cursor", next)
	}
	plan, err := w.plan(out.Repos, sw.RevsAfter)
	if err != nil {
		return false, err
	}
	// The checks go first: an account listed again here must be re-learned even if this run
	// dies right after writing its status (the next run would find nothing to change).
	if err := w.enqueueChecks(ctx, sw, plan.check); err != nil {
		return false, err
	}
	applied, err := w.applyStatuses(ctx, sw, base, plan.statuses, since)
	if err != nil {
		return false, err
	}
	if err := w.b.Index.MarkListed(sw.ID, plan.listed); err != nil {
		return false, err
	}
	n, err := queries.SweepAdvance(ctx, w.b.Pool, pgstore.SweepAdvanceParams{
		ID: sw.ID, Cursor: sw.Cursor, NextCursor: next, Walked: next == "",
		Repos: int64(len(out.Repos)), Skipped: plan.skipped + int64(applied.unsettled),
		StatusesChanged: int64(len(applied.statuses)), AccountsRemoved: int64(applied.deleted()),
		ChecksQueued: int64(len(plan.check) + applied.checks),
	})
	if err := w.recorded("the page", n, err, applied); err != nil {
		return false, err
	}
	sw.Cursor = next
	return next == "", nil
}

// unlisted asks the relay about the next stretch of the index's accounts that it did not list
// (deleted, inactive, or unknown to it), applies the answers, and records the stretch; done
// once every account has been walked.
func (w *AccountSweepWorker) unlisted(ctx context.Context, sw *pgstore.AccountSweep, base string) (bool, error) {
	since := w.b.Index.StampOf("")
	dids, next, err := w.b.Index.UnlistedAfter(sw.ID, sw.UnlistedCursor, unlistedScan, unlistedAsks)
	if err != nil {
		return false, err
	}
	if sw.Reason == SweepReasonBackfill {
		if dids, err = w.notHidden(dids); err != nil {
			return false, err
		}
	}
	statuses, err := w.ask(ctx, base, slices.Values(dids))
	if err != nil {
		return false, err
	}
	applied, err := w.applyStatuses(ctx, sw, base, statuses, since)
	if err != nil {
		return false, err
	}
	n, err := queries.SweepAdvanceUnlisted(ctx, w.b.Pool, pgstore.SweepAdvanceUnlistedParams{
		ID: sw.ID, Cursor: sw.UnlistedCursor, NextCursor: next, Done: next == "",
		Asked: int64(len(dids)), Skipped: int64(applied.unsettled),
		StatusesChanged: int64(len(applied.statuses)), AccountsRemoved: int64(applied.deleted()),
	})
	if err := w.recorded("the accounts asked about", n, err, applied); err != nil {
		return false, err
	}
	sw.UnlistedCursor = next
	return next == "", nil
}

// recorded ends a step once its advance was saved (n rows): errSweepMovedOn when another run
// had saved it first, else the removals it made count.
func (w *AccountSweepWorker) recorded(what string, n int64, err error, applied sweepApplied) error {
	if err != nil {
		return fmt.Errorf("record %s: %w", what, err)
	}
	if n == 0 {
		return errSweepMovedOn
	}
	w.b.Metrics.FirehoseRemovals.WithLabelValues("sweep").Add(float64(applied.removed))
	return nil
}

// enqueueChecks asks for a verify_repo check of each account, tagged with the sweep.
func (w *AccountSweepWorker) enqueueChecks(ctx context.Context, sw *pgstore.AccountSweep, dids []string) error {
	tag := sweepTag(sw.ID)
	for _, did := range dids {
		if err := w.b.enqueueVerify(ctx, func(after int64) river.JobArgs { return VerifyRepoArgs{DID: did, After: after} }, tag); err != nil {
			return err
		}
	}
	return nil
}
