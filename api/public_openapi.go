package api

import (
	"fmt"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// The public routes that are not Huma operations (listReposByCollection and /_health, served
// by hand in public.go and xrpc.go for their exact wire format, caching and CORS) are still
// described in the OpenAPI document, so both SDKs can call them. Only the description is
// added here: the handlers stay as they are, and the tests decode real answers into these
// types strictly, so the document cannot drift from the wire.

// ListReposPage is one page of com.atproto.sync.listReposByCollection, as atproto's lexicon
// defines it.
type ListReposPage struct {
	Cursor string          `json:"cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
	Repos  []ListReposRepo `json:"repos" doc:"The page's accounts, in DID order, each once."`
}

// ListReposRepo is one account of a listReposByCollection page.
type ListReposRepo struct {
	DID string `json:"did" doc:"An account with at least one record in the collection (or in one of them)."`
}

// XRPCError is XRPC's error body, which every error under /xrpc/ carries.
type XRPCError struct {
	Error   string `json:"error" doc:"The error's name, e.g. InvalidRequest." example:"InvalidRequest"`
	Message string `json:"message" doc:"What was wrong, safe to show."`
}

// describePublic adds the hand-served public routes to api's OpenAPI document. It registers
// no handler.
func describePublic(api huma.API) {
	oapi := api.OpenAPI()
	page, xrpcErr, health := docSchema(oapi, ListReposPage{}), docSchema(oapi, XRPCError{}), docSchema(oapi, healthOutput{})
	explode := true
	backfill := &huma.Param{
		Description: "complete when this colindex has paged every asked collection to its end (so a " +
			"downstream may rely on the page); none when it never backfilled some of them and the rest are " +
			"complete (their DIDs come from its stream alone: a replica may rely on the page); incomplete otherwise.",
		Schema: &huma.Schema{Type: huma.TypeString, Enum: []any{source.BackfillComplete, source.BackfillIncomplete, source.BackfillNone}},
	}
	etag := &huma.Param{
		Description: "Send it back as If-None-Match to get 304 while the page is unchanged.",
		Schema:      &huma.Schema{Type: huma.TypeString},
	}
	xrpcError := func(desc string) *huma.Response {
		return &huma.Response{
			Description: desc,
			Content:     map[string]*huma.MediaType{"application/json": {Schema: xrpcErr}},
		}
	}
	oapi.AddOperation(&huma.Operation{
		OperationID: "listReposByCollection",
		Method:      http.MethodGet,
		Path:        listReposPath,
		Summary:     "Accounts with records in a collection (com.atproto.sync.listReposByCollection)",
		Description: "The DIDs the index lists for a collection, in DID order, a page at a time; the last page " +
			"carries no cursor. Repeating collection pages their union, each DID once, with one cursor. " +
			"Errors have XRPC's shape ({error, message}), not problem+json.",
		Tags: []string{"index"},
		Parameters: []*huma.Param{
			{
				Name: "collection", In: "query", Required: true, Style: "form", Explode: &explode,
				Description: fmt.Sprintf("A collection NSID; repeat it (up to %d) for the union of several.", rocksindex.MaxUnion),
				Schema: &huma.Schema{
					Type: huma.TypeArray, MinItems: docPtr(1), MaxItems: docPtr(rocksindex.MaxUnion),
					Items: &huma.Schema{Type: huma.TypeString, Format: "nsid", Examples: []any{"app.bsky.feed.post"}},
				},
			},
			{
				Name: "limit", In: "query",
				Description: fmt.Sprintf("DIDs per page; values outside 1..%d are clamped.", source.MaxLimit),
				Schema: &huma.Schema{
					Type: huma.TypeInteger, Format: "int64", Minimum: docPtr(1.0), Maximum: docPtr(float64(source.MaxLimit)),
					Default: source.DefaultLimit,
				},
			},
			{
				Name: "cursor", In: "query",
				Description: "The cursor of the previous page (the last DID it held).",
				Schema:      &huma.Schema{Type: huma.TypeString, Format: "did"},
			},
		},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "A page of DIDs.",
				Headers:     map[string]*huma.Param{source.BackfillHeader: backfill, "ETag": etag},
				Content:     map[string]*huma.MediaType{"application/json": {Schema: page}},
			},
			"304": {Description: "The page named by If-None-Match is unchanged.", Headers: map[string]*huma.Param{"ETag": etag}},
			"400": xrpcError("A query that is not valid (error InvalidRequest)."),
			"500": xrpcError("The index could not be read (error InternalServerError)."),
		},
	})
	healthy := func(desc string) *huma.Response {
		return &huma.Response{
			Description: desc,
			Headers: map[string]*huma.Param{"Cache-Control": {
				Description: "no-store: a probe always sees the state now.", Schema: &huma.Schema{Type: huma.TypeString},
			}},
			Content: map[string]*huma.MediaType{"application/json": {Schema: health}},
		}
	}
	oapi.AddOperation(&huma.Operation{
		OperationID: "getHealth",
		Method:      http.MethodGet,
		Path:        "/_health",
		Summary:     "Whether Postgres and the index answer, and whether this colindex is ready for readers",
		Description: "200 when both answer; 503 naming the part that does not (the server's log has the details). " +
			"ready says whether the backfill is complete and the stream caught up. A replica (replica_of set) " +
			"answers 503 with status starting until it is ready, so a load balancer keeps readers away from it.",
		Tags: []string{"health"},
		Responses: map[string]*huma.Response{
			"200": healthy("Postgres and the index answer (and a replica is ready)."),
			"503": healthy("A part does not answer (status error, and that part says what is wrong), or a replica is not ready yet (status starting)."),
		},
	})
}

func docPtr[T any](v T) *T { return &v }

// docSchema is the schema of v's type, registered in the document's components.
func docSchema(oapi *huma.OpenAPI, v any) *huma.Schema {
	return oapi.Components.Schemas.Schema(reflect.TypeOf(v), true, "")
}
