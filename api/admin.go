package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/source"
)

func init() {
	// Slices as plain arrays in the schema, so generated clients get []T, not *[]T.
	huma.DefaultArrayNullable = false
}

type startBackfillInput struct {
	Source string `query:"source" maxLength:"300" doc:"Source relay: a bare host (https) or an http(s)://host[:port] URL. Defaults to the server's COLINDEX_DEFAULT_SOURCE. Collections that already have a progress row keep their own source: a start that names a source is refused (409) while collections it would page are bound to another one (moveCollectionsSource moves them)." example:"bsky.network"`
	// LexiconListMax overrides discovery's cap for this start.
	LexiconListMax int `query:"lexicon_list_max" minimum:"0" maximum:"1000000" doc:"Most collections the lexicon list may add to this run (default 5000); the run reports what the cap left out as lexicon_list_dropped."`
	// Refresh pages completed collections again too.
	Refresh bool `query:"refresh" doc:"Page every collection again from the beginning, completed ones too, keeping what the index holds (a page never puts back a pair the stream removed). The repair of a gap in the stream (GET /admin/firehose lists gaps): the run takes on every open gap, which is repaired once every collection is complete again. colindex starts one by itself for each new gap unless COLINDEX_GAP_REPAIR=false."`
}

type startBackfillOutput struct {
	Body jobs.StartResult
}

type backfillStatusOutput struct {
	Body jobs.Status
}

func (s *Server) registerAdmin(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "startBackfill",
		Method:      http.MethodPost,
		Path:        "/admin/backfill-collections",
		Summary:     "Start a backfill run",
		Description: "Discovers collections (Lexicon Garden's list and the index), records a progress row for each " +
			"new one, and pages every incomplete collection from its source in the background. Completed " +
			"collections are skipped; interrupted ones resume from their saved cursor.",
		Tags:          []string{"backfill"},
		DefaultStatus: http.StatusOK,
		Errors:        adminErrors(http.StatusBadRequest, http.StatusConflict, http.StatusBadGateway),
	}, s.startBackfill)

	huma.Register(api, huma.Operation{
		OperationID: "getBackfillStatus",
		Method:      http.MethodGet,
		Path:        "/admin/backfill-collections",
		Summary:     "Read backfill progress",
		Description: "Every collection's progress, in the shape zlay's status endpoint returns, plus the last run.",
		Tags:        []string{"backfill"},
		Errors:      adminErrors(),
	}, s.backfillStatus)
}

func (s *Server) startBackfill(ctx context.Context, in *startBackfillInput) (*startBackfillOutput, error) {
	raw := in.Source
	if raw == "" {
		raw = s.DefaultSource
	}
	src, err := source.Parse(raw)
	if err != nil {
		return nil, huma.Error400BadRequest(err.Error())
	}
	res, err := s.Backfill.StartWith(ctx, src, jobs.StartOptions{
		LexiconListMax: in.LexiconListMax, SourceNamed: in.Source != "", Refresh: in.Refresh,
	})
	if errors.Is(err, jobs.ErrRunning) || errors.Is(err, jobs.ErrCancelPending) || errors.Is(err, jobs.ErrSourceMismatch) {
		return nil, huma.Error409Conflict(err.Error())
	}
	if errors.Is(err, jobs.ErrDiscoveryIncomplete) {
		// A refresh must see every collection; what failed is the source's or the list's.
		return nil, huma.Error502BadGateway(err.Error() + "; nothing was started")
	}
	if err != nil {
		return nil, s.internal(ctx, "start the backfill", err)
	}
	s.Logger.InfoContext(ctx, "backfill started", "run_id", res.RunID, "source", src.Name,
		"collections", res.Collections, "discovered", res.Discovered)
	return &startBackfillOutput{Body: res}, nil
}

func (s *Server) backfillStatus(ctx context.Context, _ *struct{}) (*backfillStatusOutput, error) {
	st, err := s.Backfill.Status(ctx)
	if err != nil {
		return nil, s.internal(ctx, "read backfill status", err)
	}
	return &backfillStatusOutput{Body: st}, nil
}
