package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/syntax"
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
	coll, err := syntax.ParseNSID(q.Get("collection"))
	if err != nil {
		return listReposQuery{}, errors.New("collection must be an NSID")
	}
	out := listReposQuery{collection: coll.String(), limit: xrpcDefaultLimit}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
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
func (s *Server) listReposByCollection(w http.ResponseWriter, r *http.Request) {
	q, err := parseListReposQuery(r.URL.Query())
	if err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	// One more than asked: if it exists, there is a next page.
	dids, err := s.Index.ListRepos(q.collection, q.cursor, q.limit+1)
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "list repos", "collection", q.collection, "error", err)
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "index read failed")
		return
	}
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

func writeXRPCError(w http.ResponseWriter, status int, name, msg string) {
	writeJSON(w, status, map[string]string{"error": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
