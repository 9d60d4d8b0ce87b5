package jobs

import (
	"context"
	"fmt"
)

// BackfillState says where the backfill stands, for /_health's readiness (a replica takes
// traffic only once its copy is complete: docs/SCALING.md).
type BackfillState string

const (
	// BackfillNone: no collection has a progress row (nothing was ever started).
	BackfillNone BackfillState = "none"
	// BackfillRunning: a run, page or reset job is live.
	BackfillRunning BackfillState = "running"
	// BackfillStopped: collections are incomplete and nothing is paging them (cancelled,
	// failed past its attempts): an operator must act.
	BackfillStopped BackfillState = "stopped"
	// BackfillComplete: every collection is paged to its end and none is being reset.
	BackfillComplete BackfillState = "complete"
)

// Readiness is the backfill's state from two cheap queries (no per-collection rows): a
// health check may ask it every second.
func (b *Backfill) Readiness(ctx context.Context) (BackfillState, error) {
	running, err := anyLive(ctx, b.River, RunKind, PageKind, ResetKind)
	if err != nil {
		return "", err
	}
	counts, err := queries.ProgressCounts(ctx, b.Pool)
	if err != nil {
		return "", fmt.Errorf("count progress: %w", err)
	}
	switch {
	case running:
		return BackfillRunning, nil
	case counts.Total == 0:
		return BackfillNone, nil
	case counts.Complete < counts.Total:
		return BackfillStopped, nil
	}
	return BackfillComplete, nil
}
