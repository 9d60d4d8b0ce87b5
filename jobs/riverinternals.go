package jobs

// River internals, fenced: the only places colindex reads River's metadata keys or calls its
// driver executor (which River documents as "not stable, do not use"). Each has a test that
// fails loudly if an upgrade changes it: TestCancelRequestIsRecordedUnderTheKeyWeRead,
// TestRescueOrphansLeavesLiveProcessesAlone, TestQueueCountsSeeEveryQueue. River has no
// public API for any of the three (checked against v0.51.2).

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
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
