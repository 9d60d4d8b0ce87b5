package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/source"
)

const (
	xrpcDefaultLimit = 500
	xrpcMaxLimit     = 10000
)

type xrpcRepo struct {
	DID string `json:"did"`
}

type xrpcListReposOutput struct {
	Repos  []xrpcRepo `json:"repos"`
	Cursor string     `json:"cursor,omitempty"`
}

// listReposQuery is a validated listReposByCollection query.
type listReposQuery struct {
	collection string
	cursor     string
	limit      int
}

// parseListReposQuery validates a query. limit is clamped to 1..10000 like the network's
// servers do; a limit that is not an integer, a collection that is not an NSID and a cursor
// that is not a DID are errors (the message is safe to return).
func parseListReposQuery(q url.Values) (listReposQuery, error) {
	if q.Get("collection") == "" {
		return listReposQuery{}, errors.New("collection is required")
	}
	coll, err := syntax.ParseNSID(q.Get("collection"))
	if err != nil {
		return listReposQuery{}, errors.New("collection must be an NSID")
	}
	out := listReposQuery{collection: coll.String(), limit: xrpcDefaultLimit}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if errors.Is(err, strconv.ErrRange) {
			return listReposQuery{}, fmt.Errorf("limit is out of range (1 to %d)", xrpcMaxLimit)
		}
		if err != nil {
			return listReposQuery{}, errors.New("limit must be an integer")
		}
		out.limit = min(max(n, 1), xrpcMaxLimit)
	}
	if out.cursor = q.Get("cursor"); out.cursor != "" {
		if _, err := syntax.ParseDID(out.cursor); err != nil {
			return listReposQuery{}, errors.New("cursor must be a DID returned by this endpoint")
		}
	}
	return out, nil
}

// listReposByCollection serves com.atproto.sync.listReposByCollection from the index, in DID
// order. The cursor is the last DID returned, and the last page carries none.
//
// Every page says whether this colindex has finished the collection (source.BackfillHeader).
// A DID added behind a client's cursor never reaches that client, so a downstream colindex
// only accepts pages of a complete collection, whose DIDs no longer change.
func (s *Server) listReposByCollection(w http.ResponseWriter, r *http.Request) {
	q, err := parseListReposQuery(r.URL.Query())
	if err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	// Asked before the read, so a "complete" page was read after the last DID was written
	// (a page's DIDs are in the index before its collection can complete), and again after
	// it, so a reset that began during the read does not pass for complete.
	complete := s.collectionComplete(r, q.collection)
	// One more than asked: if it exists, there is a next page.
	dids, err := s.Index.ListRepos(q.collection, q.cursor, q.limit+1)
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "list repos", "collection", q.collection, "error", err)
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "index read failed")
		return
	}
	complete = complete && s.collectionComplete(r, q.collection)
	state := source.BackfillIncomplete
	if complete {
		state = source.BackfillComplete
	}
	w.Header().Set(source.BackfillHeader, state)
	out := xrpcListReposOutput{Repos: make([]xrpcRepo, 0, min(len(dids), q.limit))}
	if len(dids) > q.limit {
		dids = dids[:q.limit]
		out.Cursor = dids[q.limit-1]
	}
	for _, d := range dids {
		out.Repos = append(out.Repos, xrpcRepo{DID: d})
	}
	writeJSON(w, http.StatusOK, out)
}

// collectionComplete says whether the backfill of collection has finished; when that cannot
// be told (no backfill wired, database down) the answer is no: a downstream then waits
// rather than risk missing DIDs.
func (s *Server) collectionComplete(r *http.Request, collection string) bool {
	if s.Backfill == nil {
		return false
	}
	ok, err := s.Backfill.CollectionComplete(r.Context(), collection)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "list repos: backfill state unknown, answering incomplete",
			"collection", collection, "error", err)
		return false
	}
	return ok
}

func writeXRPCError(w http.ResponseWriter, status int, name, msg string) {
	writeJSON(w, status, map[string]string{"error": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
