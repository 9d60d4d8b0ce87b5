package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/sync/errgroup"

	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/rocksindex"
)

// sweepAsks is how many times a sweep asks the relay again (getRepoStatus) about an account
// whose status it could not write because something of the account was written after its
// question: the stream's event of that account, or of another that shares its stamp slot.
const sweepAsks = 3

// sweepPlan is what one page asks of the index.
type sweepPlan struct {
	statuses map[string]string // DID to the status to write
	check    []string          // DIDs to re-learn from their PDS
	listed   []string          // every valid DID the page listed
	skipped  int64
}

// plan compares a page of the relay's accounts with the index: statuses that differ, and the
// active accounts whose repo changed at or after revsAfter.
func (w *AccountSweepWorker) plan(repos []*comatproto.SyncListRepos_Repo, revsAfter *time.Time) (sweepPlan, error) {
	p := sweepPlan{statuses: map[string]string{}}
	for _, r := range repos {
		if r == nil {
			p.skipped++
			continue
		}
		if _, err := syntax.ParseDID(r.Did); err != nil {
			p.skipped++
			continue
		}
		p.listed = append(p.listed, r.Did)
		cur, err := w.b.Index.AccountStatus(r.Did)
		if err != nil {
			return sweepPlan{}, err
		}
		if cur == rocksindex.StatusDeleted {
			continue // final
		}
		want := relayStatus(r.Active, r.Status)
		if want != cur {
			p.statuses[r.Did] = want
		}
		listedAgain := want == "" && cur != "" // its pairs may be short: pages skip nothing, but a replica's peer does
		if listedAgain || (want == "" && revsAfter != nil && changedSince(r, *revsAfter)) {
			p.check = append(p.check, r.Did)
		}
	}
	return p, nil
}

// sweepApplied is what a page's statuses did to the index.
type sweepApplied struct {
	statuses  map[string]string // DID to the status written
	removed   int               // pairs of the accounts removed
	unsettled int               // accounts the stream kept writing while the sweep asked
	checks    int               // checks asked for accounts found active on asking again
}

func (a sweepApplied) deleted() int {
	n := 0
	for _, st := range a.statuses {
		if st == rocksindex.StatusDeleted {
			n++
		}
	}
	return n
}

// applyStatuses writes statuses, each only if nothing of its account was written since. An
// account written since is asked about again, as it is now, and written under a new reading
// of the clock, up to sweepAsks times: a write since may be of another account that shares
// its stamp slot, and skipping it would leave it wrong for good. Every account to be listed
// again gets its check before its status is written (the page's own are already asked for).
func (w *AccountSweepWorker) applyStatuses(ctx context.Context, sw *pgstore.AccountSweep, base string, statuses map[string]string, since rocksindex.Since) (sweepApplied, error) {
	out := sweepApplied{statuses: map[string]string{}}
	checked := map[string]bool{}
	for ask := 0; len(statuses) > 0; ask++ {
		var check []string
		for did, st := range statuses {
			if st == "" && !checked[did] {
				checked[did] = true
				check = append(check, did)
			}
		}
		if ask > 0 || sw.WalkedAt != nil { // a page's first statuses: its plan asked for their checks
			if err := w.enqueueChecks(ctx, sw, check); err != nil {
				return sweepApplied{}, err
			}
			out.checks += len(check)
		}
		done, removed, err := w.b.Index.ApplyStatusesSince(statuses, since)
		if err != nil {
			return sweepApplied{}, fmt.Errorf("apply statuses: %w", err)
		}
		out.removed += removed
		for _, did := range done {
			out.statuses[did] = statuses[did]
			delete(statuses, did)
		}
		if len(statuses) == 0 {
			break
		}
		if ask == sweepAsks {
			out.unsettled = len(statuses)
			w.b.logger.WarnContext(ctx, "account sweep: the stream kept writing accounts the sweep asked about; left as the stream wrote them",
				"accounts", out.unsettled)
			break
		}
		since = w.b.Index.StampOf("")
		if statuses, err = w.ask(ctx, base, maps.Keys(statuses)); err != nil {
			return sweepApplied{}, err
		}
	}
	return out, nil
}

// notHidden leaves out the accounts the index already hides. A sweep after the backfill is
// there for what pages brought in that the relay no longer lists, which the index lists; an
// account it hides was hidden by the stream or a sweep, and whatever became of it since, the
// stream told (a gap's sweep, or an operator's, still asks about every one). Against
// bsky.network that spares a question for each of the accounts taken down or deactivated,
// at every backfill.
func (w *AccountSweepWorker) notHidden(dids []string) ([]string, error) {
	out := dids[:0]
	for _, did := range dids {
		st, err := w.b.Index.AccountStatus(did)
		if err != nil {
			return nil, err
		}
		if st == "" {
			out = append(out, did)
		}
	}
	return out, nil
}

// sweepAskers is how many getRepoStatus questions a sweep has in flight at once: one at a
// time, a relay 50 ms away would answer 20 a second, and the millions of accounts that
// bsky.network's pages bring in and its relay no longer lists would take weeks.
const sweepAskers = 8

// ask asks the relay for the accounts' statuses as they are now (getRepoStatus), sweepAskers
// at a time, and returns the ones that differ from the index's. An account the relay does
// not know is left alone. The first error ends the asking: the step is asked again whole.
func (w *AccountSweepWorker) ask(ctx context.Context, base string, dids iter.Seq[string]) (map[string]string, error) {
	var mu sync.Mutex
	out := map[string]string{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(sweepAskers)
	for did := range dids {
		if gctx.Err() != nil {
			break // a question failed, or the job ends: the step is asked again whole
		}
		g.Go(func() error {
			r, err := fetchRepoStatus(gctx, w.b.sweepSource, base, did)
			if errors.Is(err, errRepoNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if w.b.afterSweepAnswer != nil {
				w.b.afterSweepAnswer()
			}
			cur, err := w.b.Index.AccountStatus(did)
			if err != nil {
				return err
			}
			if want := relayStatus(&r.Active, r.Status); cur != rocksindex.StatusDeleted && want != cur {
				out[did] = want
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the job ended before every question was asked
	}
	return out, nil
}
