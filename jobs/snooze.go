package jobs

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// snooze hands a page job back to River for d without spending an attempt, keeping its place
// in the largest-first order.
//
// Why: River works one priority in scheduled_at order, and a snooze sets scheduled_at to now
// plus d. A first page snoozed by a rate-limit hold would come back behind every first page
// still waiting since the start, so the largest collection, tried first, would start after
// all the small ones (issue 12). Raising a snoozed first page to prioritySnoozedFirstPage
// puts it back ahead of every chain not yet tried, still behind the next pages of started
// chains; snoozed first pages keep their order among themselves, since they were snoozed in
// order. A next page is already at the top priority and is left alone.
func (w *PageWorker) snooze(ctx context.Context, job *river.Job[PageArgs], d time.Duration) error {
	if job.Priority > prioritySnoozedFirstPage {
		// Best effort: without it the job only loses its place, as it did before.
		if err := raiseRunningJobPriority(ctx, w.Pool, job.ID, prioritySnoozedFirstPage); err != nil {
			w.Logger.WarnContext(ctx, "keep a snoozed first page's place", "collection", job.Args.Collection, "error", err)
		}
	}
	return river.JobSnooze(d)
}
