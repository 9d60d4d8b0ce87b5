package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/colindex/colindex/rocksindex"
)

// Which collections exist and how many accounts each holds, for crawlers and dashboards
// choosing what to fetch. The counts are the index's own (rocksindex/counts.go): exact, kept
// in the write batches that move the pairs, answered from memory.
//
// Two shapes: collectiondir's /v1/listCollections (a map, so readers of bsky.network's
// endpoint work unchanged) and /v1/collections, an ordered list with a cursor. Both are
// public routes served by hand like listReposByCollection (public.go): CORS, gzip, ETag
// revalidation and XRPC's error shape, which Huma's problem+json would not give them. They
// are described in the OpenAPI document by collections_openapi.go.

const (
	collectionsDefaultLimit = 500
	collectionsMaxLimit     = 1000
	collectionsMaxAsked     = 100 // collections named with collection= in one /v1/collections request
)

// ListCollectionsV1 is collectiondir's answer.
type ListCollectionsV1 struct {
	Collections map[string]int64 `json:"collections" doc:"NSID to the number of DIDs the index lists for it."`
	Cursor      string           `json:"cursor" doc:"Pass as cursor for the next page; empty on the last page."`
}

// CollectionCount is one collection and how many DIDs the index lists for it.
type CollectionCount struct {
	Collection string `json:"collection"`
	Count      int64  `json:"count" doc:"DIDs listReposByCollection lists for it (inactive accounts left out)."`
}

// CollectionsPage is one page of collections in NSID order.
type CollectionsPage struct {
	Collections []CollectionCount `json:"collections"`
	Cursor      string            `json:"cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
}

// countsCacheControl: counts move with every event, and a reader polling for them wants
// seconds-old numbers, not minutes-old ones.
const countsCacheControl = "public, max-age=5"

// listCollectionsV1 answers as collectiondir does: c= (repeated, any number) asks for
// particular collections, and then only those with DIDs are in the map, whatever cursor and
// limit say; a present but empty c= asks for none. Otherwise a page in NSID order after
// cursor, limit clamped to 50..1000, and an integer that does not parse is the default.
func (s *Server) listCollectionsV1(w http.ResponseWriter, r *http.Request) {
	q, ok := readQuery(w, r)
	if !ok {
		return
	}
	out := ListCollectionsV1{Collections: map[string]int64{}}
	if asked, named := q["c"]; named {
		for _, c := range asked {
			if n := s.Index.Count(c); n > 0 {
				out.Collections[c] = n
			}
		}
	} else {
		limit := collectionsDefaultLimit
		if n, err := strconv.Atoi(q.Get("limit")); err == nil {
			limit = min(max(n, 50), collectionsMaxLimit)
		}
		page, more := s.countsPage(q.Get("cursor"), limit)
		for _, cc := range page {
			out.Collections[cc.Collection] = cc.Count
		}
		if more {
			out.Cursor = page[len(page)-1].Collection
		}
	}
	writeCountsJSON(w, r, out)
}

// listCollections is the ordered shape: collection= (repeated, up to 100 distinct NSIDs)
// answers each asked collection once, in the order asked, with 0 for one the index lists no
// DID for; otherwise a page in NSID order after cursor. limit is clamped to 1..1000 (default
// 500) as listReposByCollection clamps its own; one that is not an integer is an error.
func (s *Server) listCollections(w http.ResponseWriter, r *http.Request) {
	q, ok := readQuery(w, r)
	if !ok {
		return
	}
	out := CollectionsPage{Collections: []CollectionCount{}}
	var asked []string
	if err := distinctNSIDs(q["collection"], collectionsMaxAsked, &asked); err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	limit, err := parseLimit(q.Get("limit"), collectionsDefaultLimit, collectionsMaxLimit)
	if err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	if len(asked) > 0 {
		for _, c := range asked {
			out.Collections = append(out.Collections, CollectionCount{c, s.Index.Count(c)})
		}
	} else {
		page, more := s.countsPage(q.Get("cursor"), limit)
		for _, cc := range page {
			out.Collections = append(out.Collections, CollectionCount{cc.Collection, cc.Count})
		}
		if more {
			out.Cursor = page[len(page)-1].Collection
		}
	}
	writeCountsJSON(w, r, out)
}

// writeCountsJSON answers v as a cacheable page: encoding/json sorts map keys, so one state
// of the counts is one body and one ETag.
func writeCountsJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil { // not for these types
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "encode counts")
		return
	}
	writeCacheable(w, r, append(body, '\n'), "", countsCacheControl)
}

// countsPage is up to limit collections after cursor, and whether more follow.
func (s *Server) countsPage(cursor string, limit int) ([]rocksindex.CollectionCount, bool) {
	page := s.Index.CollectionCounts(cursor, limit+1)
	if len(page) > limit {
		return page[:limit], true
	}
	return page, false
}
