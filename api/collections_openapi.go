package api

import (
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// describeCollections adds the two count routes (served by hand in collections.go) to api's
// OpenAPI document, as describePublic does for listReposByCollection. It registers no
// handler; TestPublicRoutesAreDescribedAsServed decodes their real answers into these types.
func describeCollections(api huma.API) {
	oapi := api.OpenAPI()
	v1, ordered, xrpcErr := docSchema(oapi, ListCollectionsV1{}), docSchema(oapi, CollectionsPage{}), docSchema(oapi, XRPCError{})
	explode := true
	str := &huma.Schema{Type: huma.TypeString}
	page := func(body *huma.Schema) map[string]*huma.Response {
		return map[string]*huma.Response{
			"200": {
				Description: "The counts.",
				Headers: map[string]*huma.Param{
					"ETag":          {Description: "Send it back as If-None-Match to get 304 while the counts are unchanged.", Schema: str},
					"Cache-Control": {Description: "public, max-age=5: counts move with every event.", Schema: str},
				},
				Content: map[string]*huma.MediaType{"application/json": {Schema: body}},
			},
			"304": {Description: "The answer named by If-None-Match is unchanged."},
			"400": {
				Description: "A query that is not valid (error InvalidRequest).",
				Content:     map[string]*huma.MediaType{"application/json": {Schema: xrpcErr}},
			},
		}
	}
	cursor := &huma.Param{
		Name: "cursor", In: "query", Schema: &huma.Schema{Type: huma.TypeString, Format: "nsid"},
		Description: "The cursor of the previous page: the last NSID it held.",
	}
	oapi.AddOperation(&huma.Operation{
		OperationID: "listCollectionsV1",
		Method:      http.MethodGet,
		Path:        "/v1/listCollections",
		Summary:     "Collections and their DID counts (collectiondir's shape)",
		Description: "The collections the index lists at least one DID for, in NSID order, with exact counts; " +
			"the same query parameters and response as indigo's collectiondir (bsky.network). " +
			"Errors have XRPC's shape ({error, message}).",
		Tags: []string{"index"},
		Parameters: []*huma.Param{
			{
				Name: "c", In: "query", Style: "form", Explode: &explode,
				Description: "Ask for these collections only (repeat the parameter); those the index lists no DID for " +
					"are left out, and cursor and limit are ignored.",
				Schema: &huma.Schema{Type: huma.TypeArray, Items: &huma.Schema{Type: huma.TypeString}},
			},
			cursor,
			{
				Name: "limit", In: "query",
				Description: fmt.Sprintf("Collections per page, clamped to 50..%d; one that is not an integer is the "+
					"default, as collectiondir does.", collectionsMaxLimit),
				Schema: &huma.Schema{Type: huma.TypeString, Default: fmt.Sprint(collectionsDefaultLimit)},
			},
		},
		Responses: page(v1),
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "listCollections",
		Method:      http.MethodGet,
		Path:        "/v1/collections",
		Summary:     "Collections and their DID counts",
		Description: "The collections the index lists at least one DID for, in NSID order with a cursor, or the " +
			"collections asked for. Counts are exact: the number of DIDs listReposByCollection lists. " +
			"Errors have XRPC's shape ({error, message}).",
		Tags: []string{"index"},
		Parameters: []*huma.Param{
			{
				Name: "collection", In: "query", Style: "form", Explode: &explode,
				Description: fmt.Sprintf("Ask for these collections only (repeat the parameter, up to %d distinct); "+
					"each is answered once, in the order asked, with count 0 when the index lists none.", collectionsMaxAsked),
				Schema: &huma.Schema{
					Type: huma.TypeArray, MaxItems: docPtr(collectionsMaxAsked),
					Items: &huma.Schema{Type: huma.TypeString, Format: "nsid"},
				},
			},
			cursor,
			{
				Name: "limit", In: "query",
				Description: fmt.Sprintf("Collections per page; values outside 1..%d are clamped.", collectionsMaxLimit),
				Schema: &huma.Schema{
					Type: huma.TypeInteger, Format: "int64", Minimum: docPtr(1.0), Maximum: docPtr(float64(collectionsMaxLimit)),
					Default: collectionsDefaultLimit,
				},
			},
		},
		Responses: page(ordered),
	})
}
