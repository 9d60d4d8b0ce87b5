package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/rocksindex"
)

// Which collections exist and how many accounts each holds, for crawlers and dashboards
// choosing what to fetch. The counts are the index's own (rocksindex/counts.go): exact, kept
// in the write batches that move the pairs, answered from memory.
//
// Two shapes: collectiondir's /v1/listCollections (a map, so readers of bsky.network's
// endpoint work unchanged) and /v1/collections, an ordered list with a cursor.

const (
	collectionsDefaultLimit = 500
	collectionsMaxLimit     = 1000
	collectionsMaxAsked     = 100 // collections named with c= / collection= in one request
)

type listCollectionsInput struct {
	C      []string `query:"c,explode" doc:"Ask for these collections only (repeat the parameter); unknown or empty ones are left out. Cursor and limit are then ignored."`
	Cursor string   `query:"cursor" doc:"The cursor of the previous page: the last NSID it held."`
	Limit  string   `query:"limit" doc:"Collections per page, clamped to 50..1000 (default 500), as collectiondir does."`
}

// ListCollectionsV1 is collectiondir's answer.
type ListCollectionsV1 struct {
	Collections map[string]int64 `json:"collections" doc:"NSID to the number of DIDs the index lists for it."`
	Cursor      string           `json:"cursor" doc:"Pass as cursor for the next page; empty on the last page."`
}

type listCollectionsV1Output struct {
	CacheControl string `header:"Cache-Control"`
	Body         ListCollectionsV1
}

type collectionsInput struct {
	Collection []string `query:"collection,explode" maxItems:"100" doc:"Ask for these collections only (repeat the parameter); each is answered, with count 0 when the index lists none."`
	Cursor     string   `query:"cursor" doc:"The cursor of the previous page: the last NSID it held."`
	Limit      int      `query:"limit" minimum:"1" maximum:"1000" default:"500" doc:"Collections per page."`
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

type collectionsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         CollectionsPage
}

// countsCacheControl: counts move with every event, and a reader polling for them wants
// seconds-old numbers, not minutes-old ones.
const countsCacheControl = "public, max-age=5"

func (s *Server) registerCollections(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "listCollectionsV1",
		Method:      http.MethodGet,
		Path:        "/v1/listCollections",
		Summary:     "Collections and their DID counts (collectiondir's shape)",
		Description: "The collections the index lists at least one DID for, in NSID order, with exact counts; " +
			"the same query parameters and response as indigo's collectiondir (bsky.network).",
		Tags:        []string{"index"},
		Middlewares: huma.Middlewares{allowBrowsers},
	}, s.listCollectionsV1)
	huma.Register(api, huma.Operation{
		OperationID: "listCollections",
		Method:      http.MethodGet,
		Path:        "/v1/collections",
		Summary:     "Collections and their DID counts",
		Description: "The collections the index lists at least one DID for, in NSID order with a cursor, or the " +
			"collections asked for. Counts are exact: the number of DIDs listReposByCollection lists.",
		Tags:        []string{"index"},
		Middlewares: huma.Middlewares{allowBrowsers},
	}, s.listCollections)
}

func (s *Server) listCollectionsV1(_ context.Context, in *listCollectionsInput) (*listCollectionsV1Output, error) {
	out := &listCollectionsV1Output{CacheControl: countsCacheControl, Body: ListCollectionsV1{Collections: map[string]int64{}}}
	if len(in.C) > 0 {
		for _, c := range in.C[:min(len(in.C), collectionsMaxAsked)] {
			if n := s.Index.Count(c); n > 0 {
				out.Body.Collections[c] = n
			}
		}
		return out, nil
	}
	limit := collectionsDefaultLimit
	if n, err := strconv.Atoi(in.Limit); err == nil {
		limit = min(max(n, 50), collectionsMaxLimit)
	}
	page, more := s.countsPage(in.Cursor, limit)
	for _, cc := range page {
		out.Body.Collections[cc.Collection] = cc.Count
	}
	if more {
		out.Body.Cursor = page[len(page)-1].Collection
	}
	return out, nil
}

func (s *Server) listCollections(_ context.Context, in *collectionsInput) (*collectionsOutput, error) {
	out := &collectionsOutput{CacheControl: countsCacheControl, Body: CollectionsPage{Collections: []CollectionCount{}}}
	if len(in.Collection) > 0 {
		for _, c := range in.Collection {
			out.Body.Collections = append(out.Body.Collections, CollectionCount{c, s.Index.Count(c)})
		}
		return out, nil
	}
	page, more := s.countsPage(in.Cursor, in.Limit)
	for _, cc := range page {
		out.Body.Collections = append(out.Body.Collections, CollectionCount{cc.Collection, cc.Count})
	}
	if more {
		out.Body.Cursor = page[len(page)-1].Collection
	}
	return out, nil
}

// countsPage is up to limit collections after cursor, and whether more follow.
func (s *Server) countsPage(cursor string, limit int) ([]rocksindex.CollectionCount, bool) {
	page := s.Index.CollectionCounts(cursor, limit+1)
	if len(page) > limit {
		return page[:limit], true
	}
	return page, false
}

// allowBrowsers lets a page on any origin read the counts, as the XRPC routes do (public.go):
// they are public, carry no credentials, and are GETs without preflight.
func allowBrowsers(ctx huma.Context, next func(huma.Context)) {
	ctx.SetHeader("Access-Control-Allow-Origin", "*")
	next(ctx)
}
