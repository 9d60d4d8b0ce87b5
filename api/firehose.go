package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/firehose"
)

// FirehoseStatus is the stream follower's state, as GET /admin/firehose shows it.
type FirehoseStatus struct {
	// Enabled is false when COLINDEX_FIREHOSE_URL is empty: nothing follows the relay.
	Enabled bool `json:"enabled" doc:"False when the firehose is disabled (COLINDEX_FIREHOSE_URL empty)."`
	firehose.Status
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

func (s *Server) firehoseStatus(context.Context, *struct{}) (*firehoseOutput, error) {
	if s.Firehose == nil {
		return &firehoseOutput{Body: FirehoseStatus{Status: firehose.Status{Cursor: -1}}}, nil
	}
	return &firehoseOutput{Body: FirehoseStatus{Enabled: true, Status: s.Firehose.Status()}}, nil
}
