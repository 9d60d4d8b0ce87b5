package jobs

// River internals, fenced: the only places colindex reads River's metadata keys, calls its
// driver executor (which River documents as "not stable, do not use") or writes its job
// table. Each has a test that fails loudly if an upgrade changes it:
// TestCancelRequestIsRecordedUnderTheKeyWeRead, TestRescueOrphansLeavesLiveProcessesAlone,
// TestQueueCountsSeeEveryQueue, TestSnoozedFirstPageKeepsItsPlace. River has no public API
// for any of the four (checked against v0.51.2).

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
)

// cancelRequested reports whether River recorded a cancel request in a job's metadata.
// River's JobCancel on a running job only writes this key and leaves the job running until
// its worker returns.
func cancelRequested(metadata []byte) bool {
	var m struct {
		CancelAttemptedAt *time.Time `json:"cancel_attempted_at"`
	}
	return json.Unmarshal(metadata, &m) == nil && m.CancelAttemptedAt != nil
}

// rescueJobs runs River's own rescue query (its JobRescuer's): it only moves jobs that are
// still running and were attempted before params.StuckHorizon.
func rescueJobs(ctx context.Context, client *river.Client[pgx.Tx], params *riverdriver.JobRescueManyParams) error {
	_, err := client.Driver().GetExecutor().JobRescueMany(ctx, params)
	return err
}

// queueCounts counts available and running jobs per queue, in one query.
func queueCounts(ctx context.Context, client *river.Client[pgx.Tx], queues ...string) ([]*riverdriver.JobCountByQueueAndStateResult, error) {
	return client.Driver().GetExecutor().JobCountByQueueAndState(ctx, &riverdriver.JobCountByQueueAndStateParams{QueueNames: queues})
}

// raiseRunningJobPriority sets a running job's priority (never lowering it): River's API has
// no way to change a job's priority, and a snooze keeps whatever the row holds. The job is
// running, so River's producer is not reading the row; its completer's snooze update leaves
// priority alone. Tested by TestSnoozedFirstPageKeepsItsPlace.
func raiseRunningJobPriority(ctx context.Context, pool *pgxpool.Pool, jobID int64, priority int) error {
	_, err := pool.Exec(ctx, `UPDATE river_job SET priority = $2 WHERE id = $1 AND state = 'running' AND priority > $2`,
		jobID, priority)
	return err
}
