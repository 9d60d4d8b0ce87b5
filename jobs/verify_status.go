package jobs

import (
	"context"

	"github.com/colindex/colindex/metrics"
)

// VerifyJobCounts is the verify queue as an operator reads it: the checks with accounts'
// PDSes for what a commit's proof could not settle, and for #sync events.
type VerifyJobCounts struct {
	Queued int   `json:"queued" doc:"Verify jobs waiting, retrying or running, across every process on the database (River UI lists them)."`
	Done   int64 `json:"done" doc:"Verify job attempts this process finished since it started."`
	Failed int64 `json:"failed" doc:"Verify job attempts this process failed since it started (retried with backoff; a failure never removes anything)."`
}

// VerifyJobs counts the live verify jobs and this process's finished and failed attempts.
func (b *Backfill) VerifyJobs(ctx context.Context) (VerifyJobCounts, error) {
	live, err := liveJobs(ctx, b.River, VerifyCollectionKind, VerifyRepoKind)
	if err != nil {
		return VerifyJobCounts{}, err
	}
	out := VerifyJobCounts{Queued: len(live)}
	for _, kind := range []string{VerifyCollectionKind, VerifyRepoKind} {
		out.Done += int64(metrics.Value(b.Metrics.VerifyJobs.WithLabelValues(kind, "done")))
		out.Failed += int64(metrics.Value(b.Metrics.VerifyJobs.WithLabelValues(kind, "failed")))
	}
	return out, nil
}
