package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/source"
)

// MoveSourceRequest is the body of moveCollectionsSource.
type MoveSourceRequest struct {
	Source string `json:"source" minLength:"1" maxLength:"300" doc:"The source relay to page from: a bare host (https) or an http(s)://host[:port] URL." example:"http://127.0.0.1:2600"`
	// All and Collections are exclusive: an empty list never means every collection, so a
	// client that forgets the list moves nothing.
	All         bool     `json:"all,omitempty" doc:"Move every collection that has a progress row. Exclusive with collections."`
	Collections []string `json:"collections,omitempty" maxItems:"10000" doc:"The collections (NSIDs) to move. Exclusive with all." example:"[\"app.bsky.feed.post\"]"`
	Cursor      string   `json:"cursor" enum:"keep,restart" doc:"keep: each collection goes on from its cursor, counts and completion kept (for a source that shares the old one's cursors, such as another name of the same service). restart: each is paged again from the beginning on the new source, counts from zero, completed ones reopened; DIDs already indexed stay (adding is idempotent)."`
}

type moveSourceInput struct {
	Body MoveSourceRequest
}

type moveSourceOutput struct{ Body jobs.MoveResult }

func (s *Server) registerMoveSource(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "moveCollectionsSource",
		Method:      http.MethodPost,
		Path:        "/admin/backfill-collections/move-source",
		Summary:     "Move collections to another source",
		Description: "Binds every collection (all) or the named ones to another source relay, in one transaction, " +
			"keeping their cursors or paging them again from the beginning (cursor). Collections already bound to " +
			"the source are left as they are. A live chain goes on from the new source with its next page; a page " +
			"in flight from the old source is dropped and fetched again. A moved incomplete collection without a " +
			"live chain starts paging when a run is live, otherwise at the next start. A start that names a " +
			"source never moves a collection: it is refused (409) while collections it would page are bound to " +
			"another one.",
		Tags:   []string{"run control"},
		Errors: adminErrors(http.StatusBadRequest, http.StatusNotFound),
	}, s.moveSource)
}

func (s *Server) moveSource(ctx context.Context, in *moveSourceInput) (*moveSourceOutput, error) {
	body := in.Body
	src, err := source.Parse(body.Source)
	if err != nil {
		return nil, huma.Error400BadRequest(err.Error())
	}
	if body.All == (len(body.Collections) > 0) {
		return nil, huma.Error400BadRequest("name the collections to move, or set all (not both)")
	}
	for _, c := range body.Collections {
		if err := checkNSID(c); err != nil {
			return nil, huma.Error400BadRequest("collection " + c + " is not an NSID")
		}
	}
	res, err := s.Backfill.MoveSource(ctx, jobs.MoveRequest{
		Source: src, All: body.All, Collections: body.Collections, Restart: body.Cursor == jobs.MoveRestartCursor,
	})
	if errors.Is(err, jobs.ErrNoSuchCollection) {
		return nil, huma.Error404NotFound(err.Error())
	}
	if err != nil {
		return nil, s.internal(ctx, "move collections", err)
	}
	s.Logger.InfoContext(ctx, "collections moved", "source", src.Name, "cursor", res.Cursor,
		"moved", len(res.Moved), "unchanged", res.Unchanged, "continuing", res.Continuing,
		"enqueued", res.Enqueued, "waiting", res.Waiting)
	return &moveSourceOutput{Body: res}, nil
}
