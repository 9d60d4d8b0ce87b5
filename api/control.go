package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/jobs"
)

type collectionInput struct {
	Collection string `path:"collection" maxLength:"317" doc:"The collection's NSID." example:"app.bsky.feed.post"`
}

type cancelOutput struct{ Body jobs.CancelResult }

// PauseState is what pause and resume answer.
type PauseState struct {
	Paused bool `json:"paused" doc:"Whether paging is now paused."`
}

type pausedOutput struct{ Body PauseState }

type retryOutput struct{ Body jobs.RetryResult }

type resetOutput struct{ Body jobs.ResetResult }

type collectionOutput struct{ Body jobs.CollectionDetail }

func (s *Server) registerControl(api huma.API) {
	op := func(id, method, path, summary, description string, errs ...int) huma.Operation {
		return huma.Operation{
			OperationID: id, Method: method, Path: path, Summary: summary, Description: description,
			Tags: []string{"run control"}, Errors: adminErrors(errs...),
		}
	}
	huma.Register(api, op("cancelBackfill", http.MethodPost, "/admin/backfill-collections/cancel",
		"Cancel the running backfill",
		"Cancels the run and every page chain. Cursors and counts stay as committed, so a later start "+
			"resumes each collection where it stopped. Answers 200 with cancelled_jobs 0 when nothing runs."),
		s.cancelBackfill)
	huma.Register(api, op("pauseBackfill", http.MethodPost, "/admin/backfill-collections/pause",
		"Pause paging",
		"Stops new page fetches; pages in flight finish. The run stays live, and the pause survives restarts."),
		s.pauseBackfill)
	huma.Register(api, op("resumeBackfill", http.MethodPost, "/admin/backfill-collections/resume",
		"Resume paging", "Undoes pauseBackfill."),
		s.resumeBackfill)
	huma.Register(api, op("retryFailedCollections", http.MethodPost, "/admin/backfill-collections/retry",
		"Retry stopped collections",
		"Restarts the chain of every incomplete collection that has none live, such as one whose retries "+
			"ran out, and the job of every unfinished account sweep that has none live (from where it stopped). "+
			"Live chains and sweeps are left alone."),
		s.retryFailed)
	huma.Register(api, op("getCollection", http.MethodGet, "/admin/backfill-collections/{collection}",
		"Read one collection's progress",
		"Cursor, imported and skipped counts, pages, last error, first and last page time, average rate, "+
			"and the live page job.", http.StatusBadRequest, http.StatusNotFound),
		s.getCollection)
	huma.Register(api, op("resetCollection", http.MethodPost, "/admin/backfill-collections/{collection}/reset",
		"Reset one collection",
		"Zeroes the collection's cursor and counts at once, then a background job (River kind "+
			"collection_reset) cancels its chain, removes its DIDs from the index with a range delete and a "+
			"compaction, and pages it again from the beginning. Answers at once with the job; the collection's "+
			"detail shows resetting and reset_removed meanwhile. A reset requested while one of the same "+
			"collection is under way answers with that one (already_running).", http.StatusBadRequest, http.StatusNotFound),
		s.resetCollection)
}

func (s *Server) cancelBackfill(ctx context.Context, _ *struct{}) (*cancelOutput, error) {
	res, err := s.Backfill.Cancel(ctx)
	if err != nil {
		return nil, s.internal(ctx, "cancel backfill", err)
	}
	s.Logger.InfoContext(ctx, "backfill cancelled", "jobs", res.CancelledJobs, "run_id", res.RunID)
	return &cancelOutput{Body: res}, nil
}

func (s *Server) pauseBackfill(ctx context.Context, _ *struct{}) (*pausedOutput, error) {
	if err := s.Backfill.Pause(ctx); err != nil {
		return nil, s.internal(ctx, "pause backfill", err)
	}
	s.Logger.InfoContext(ctx, "backfill paused")
	return &pausedOutput{Body: PauseState{Paused: true}}, nil
}

func (s *Server) resumeBackfill(ctx context.Context, _ *struct{}) (*pausedOutput, error) {
	if err := s.Backfill.Resume(ctx); err != nil {
		return nil, s.internal(ctx, "resume backfill", err)
	}
	s.Logger.InfoContext(ctx, "backfill resumed")
	return &pausedOutput{}, nil
}

func (s *Server) retryFailed(ctx context.Context, _ *struct{}) (*retryOutput, error) {
	res, err := s.Backfill.Retry(ctx)
	if err != nil {
		return nil, s.internal(ctx, "retry collections", err)
	}
	s.Logger.InfoContext(ctx, "collections retried", "collections", res.Collections)
	return &retryOutput{Body: res}, nil
}

func (s *Server) getCollection(ctx context.Context, in *collectionInput) (*collectionOutput, error) {
	if err := checkNSID(in.Collection); err != nil {
		return nil, err
	}
	d, err := s.Backfill.Collection(ctx, in.Collection)
	if errors.Is(err, jobs.ErrNoSuchCollection) {
		return nil, huma.Error404NotFound("no progress row for " + in.Collection)
	}
	if err != nil {
		return nil, s.internal(ctx, "read collection", err)
	}
	return &collectionOutput{Body: d}, nil
}

func (s *Server) resetCollection(ctx context.Context, in *collectionInput) (*resetOutput, error) {
	if err := checkNSID(in.Collection); err != nil {
		return nil, err
	}
	res, err := s.Backfill.Reset(ctx, in.Collection)
	if errors.Is(err, jobs.ErrNoSuchCollection) {
		return nil, huma.Error404NotFound("no progress row for " + in.Collection)
	}
	if err != nil {
		return nil, s.internal(ctx, "reset collection", err)
	}
	s.Logger.InfoContext(ctx, "collection reset", "collection", in.Collection, "job_id", res.JobID, "already_running", res.AlreadyRunning)
	return &resetOutput{Body: res}, nil
}

func checkNSID(c string) error {
	if _, err := syntax.ParseNSID(c); err != nil {
		return huma.Error400BadRequest("collection must be an NSID")
	}
	return nil
}

// internal logs err and answers 500 without leaking it.
func (s *Server) internal(ctx context.Context, what string, err error) error {
	s.Logger.ErrorContext(ctx, what, "error", err)
	return huma.Error500InternalServerError("could not " + what)
}
