package api

import (
	"encoding/json"
	"net/http"
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

// listReposByCollection serves com.atproto.sync.listReposByCollection from the index, in DID
// order. The cursor is the last DID returned, and the last page carries none. limit is clamped
// to 1..10000 like the network's servers do; a limit that is not an integer is a 400.
func (s *Server) listReposByCollection(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	coll, err := syntax.ParseNSID(q.Get("collection"))
	if err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", "collection must be an NSID")
		return
	}
	limit := xrpcDefaultLimit
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", "limit must be an integer")
			return
		}
		limit = min(max(n, 1), xrpcMaxLimit)
	}
	cursor := q.Get("cursor")
	if cursor != "" {
		if _, err := syntax.ParseDID(cursor); err != nil {
			writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", "cursor must be a DID returned by this endpoint")
			return
		}
	}

	// One more than asked: if it exists, there is a next page.
	dids, err := s.Index.ListRepos(coll.String(), cursor, limit+1)
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "list repos", "collection", coll, "error", err)
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "index read failed")
		return
	}
	out := xrpcListReposOutput{Repos: make([]xrpcRepo, 0, min(len(dids), limit))}
	if len(dids) > limit {
		dids = dids[:limit]
		out.Cursor = dids[limit-1]
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
