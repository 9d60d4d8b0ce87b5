package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/jobs"
)

type startSweepInput struct {
	Body struct {
		Relay     string     `json:"relay,omitempty" doc:"The relay whose account list (com.atproto.sync.listRepos) to walk: its stream URL (ws://, wss://) or its http(s) base. Default: the relay the firehose follows."`
		RevsAfter *time.Time `json:"revs_after,omitempty" doc:"Also re-learn from their PDS (a verify_repo check each) the active accounts whose repo changed at or after this time, to recover the record deletes of a period the stream missed. Absent: statuses only."`
	}
}

type sweepOutput struct{ Body jobs.Sweep }

func (s *Server) registerSweeps(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "startAccountSweep",
		Method:      http.MethodPost,
		Path:        "/admin/sweeps",
		Summary:     "Sweep the relay's account list",
		Description: "Starts a background job (River kind account_sweep) that brings every account's status in the index " +
			"in line with the relay's: it walks the relay's com.atproto.sync.listRepos (its active accounts), lists again " +
			"the hidden ones it lists and re-learns them from their PDS, then asks the relay (getRepoStatus) about each " +
			"account of the index it did not list: deleted accounts lose their pairs (a backfill from bsky.network lists " +
			"accounts deleted before the stream began), inactive ones are hidden. With revs_after, the listed accounts " +
			"whose repo changed since are re-learned from their PDS too. A stream gap starts one of these by itself " +
			"(with revs_after an hour before the stream was last live). Progress is in GET /admin/firehose (sweeps). " +
			"400 for a relay that is not a URL; 409 without a relay when the firehose is disabled.",
		Tags:   []string{"firehose"},
		Errors: adminErrors(http.StatusBadRequest, http.StatusConflict),
	}, s.startSweep)
}

func (s *Server) startSweep(ctx context.Context, in *startSweepInput) (*sweepOutput, error) {
	relay := in.Body.Relay
	if relay == "" {
		if s.Firehose == nil {
			return nil, huma.Error409Conflict("the firehose is disabled (COLINDEX_FIREHOSE_URL is empty): name the relay to sweep (colindex sweep --relay URL)")
		}
		relay = s.Firehose.Relay()
	}
	sw, err := s.Backfill.StartSweep(ctx, relay, in.Body.RevsAfter)
	if errors.Is(err, jobs.ErrBadRelayURL) {
		return nil, huma.Error400BadRequest(err.Error())
	}
	if err != nil {
		return nil, s.internal(ctx, "start an account sweep", err)
	}
	return &sweepOutput{Body: sw}, nil
}
