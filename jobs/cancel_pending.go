package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// cancelPending lists the page jobs that were cancelled but are still running: a worker
// that has not yet returned, or one whose process died (River's rescuer ends those).
func cancelPending(ctx context.Context, client *river.Client[pgx.Tx]) ([]*rivertype.JobRow, error) {
	running, err := listAll(ctx, client, river.NewJobListParams().Kinds(PageKind).States(rivertype.JobStateRunning))
	if err != nil {
		return nil, err
	}
	var out []*rivertype.JobRow
	for _, j := range running {
		if cancelRequested(j.Metadata) {
			out = append(out, j)
		}
	}
	return out, nil
}

// LiveJob is a job that is still live, for an operator to look up in River UI.
type LiveJob struct {
	ID         int64     `json:"id"`
	Kind       string    `json:"kind"`
	State      string    `json:"state"`
	Collection string    `json:"collection,omitempty"`
	AttemptAt  time.Time `json:"attempted_at,omitzero" doc:"When its current attempt began."`
}

func liveJob(j *rivertype.JobRow) LiveJob {
	lj := LiveJob{ID: j.ID, Kind: j.Kind, State: string(j.State)}
	var args struct {
		Collection string `json:"collection"`
	}
	if json.Unmarshal(j.EncodedArgs, &args) == nil {
		lj.Collection = args.Collection
	}
	if j.AttemptedAt != nil {
		lj.AttemptAt = *j.AttemptedAt
	}
	return lj
}

// describeJobs names up to five jobs for an error message.
func describeJobs(jobs []*rivertype.JobRow) string {
	parts := make([]string, 0, min(len(jobs), 5))
	for _, j := range jobs[:min(len(jobs), 5)] {
		lj := liveJob(j)
		parts = append(parts, fmt.Sprintf("job %d (%s)", lj.ID, lj.Collection))
	}
	if len(jobs) > 5 {
		parts = append(parts, fmt.Sprintf("and %d more", len(jobs)-5))
	}
	return strings.Join(parts, ", ")
}
