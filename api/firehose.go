package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/jobs"
)

// FirehoseStatus is the stream follower's state, as GET /admin/firehose shows it.
type FirehoseStatus struct {
	// Enabled is false when COLINDEX_FIREHOSE_URL is empty: nothing follows the relay.
	Enabled bool `json:"enabled" doc:"False when the firehose is disabled (COLINDEX_FIREHOSE_URL empty)."`
	firehose.Status
	// RemovalsByCause and VerifyJobs cover removals wherever they come from: the stream, and
	// the verify jobs this process runs.
	RemovalsByCause map[string]int64     `json:"removals_by_cause" doc:"(collection, DID) pairs this process removed since it started, by cause: proof (the commit's MST blocks showed the last record of the collection gone), pds_check (the account's PDS listed no record), account_deletion (#account deleted), sync (a #sync's describeRepo no longer lists the collection)."`
	VerifyJobs      jobs.VerifyJobCounts `json:"verify_jobs" doc:"Checks with accounts' PDSes: queued (across processes), done and failed (this process)."`
}

type firehoseOutput struct{ Body FirehoseStatus }

func (s *Server) registerFirehose(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "getFirehoseStatus",
		Method:      http.MethodGet,
		Path:        "/admin/firehose",
		Summary:     "Read the firehose follower's state",
		Description: "Whether this process follows the relay's subscribeRepos (one process per database does), " +
			"whether it is connected, the durable cursor (the seq of the last event whose effects are durable in " +
			"the index), the newest event's time and lag, and counters since the process started.",
		Tags:   []string{"firehose"},
		Errors: adminErrors(),
	}, s.firehoseStatus)
}

func (s *Server) firehoseStatus(ctx context.Context, _ *struct{}) (*firehoseOutput, error) {
	out := FirehoseStatus{Status: firehose.Status{Cursor: -1}, RemovalsByCause: s.metricSet().RemovalsByCause()}
	if s.Firehose != nil {
		out.Enabled, out.Status = true, s.Firehose.Status()
	}
	var err error
	if out.VerifyJobs, err = s.Backfill.VerifyJobs(ctx); err != nil {
		return nil, huma.Error500InternalServerError("count verify jobs", err)
	}
	return &firehoseOutput{Body: out}, nil
}
