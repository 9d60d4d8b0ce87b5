package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/danielgtaylor/huma/v2"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/source"
)

// decodeStrict decodes body into v, failing on any field v does not declare: a field the
// wire has and the document lacks fails the test.
func decodeStrict(t *testing.T, body string, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), body)
}

// The hand-served public routes are in the OpenAPI document, public, and described by the
// types their real answers decode into.
func TestPublicRoutesAreDescribedAsServed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	oapi := s.srv.NewAPI(http.NewServeMux()).OpenAPI()

	list := oapi.Paths[listReposPath]
	require.NotNil(t, list, "listReposByCollection is in the document")
	require.NotNil(t, list.Get)
	require.Equal(t, "listReposByCollection", list.Get.OperationID)
	require.Empty(t, list.Get.Security)
	params := map[string]*huma.Param{}
	for _, p := range list.Get.Parameters {
		params[p.Name] = p
	}
	require.True(t, params["collection"].Required)
	require.Equal(t, huma.TypeArray, params["collection"].Schema.Type)
	require.Equal(t, 20, *params["collection"].Schema.MaxItems)
	require.EqualValues(t, 10000, *params["limit"].Schema.Maximum)
	require.Equal(t, 500, params["limit"].Schema.Default)
	require.Contains(t, list.Get.Responses["200"].Headers, source.BackfillHeader)
	require.Equal(t, "#/components/schemas/XRPCError",
		list.Get.Responses["400"].Content["application/json"].Schema.Ref)

	health := oapi.Paths["/_health"]
	require.NotNil(t, health, "/_health is in the document")
	require.NotNil(t, health.Get)
	require.Empty(t, health.Get.Security)
	require.Contains(t, health.Get.Responses, "503")

	// The 3.0 document the Go SDK is generated from has them too.
	down, err := oapi.Downgrade()
	require.NoError(t, err)
	require.Contains(t, string(down), `"operationId":"listReposByCollection"`)
	require.Contains(t, string(down), `"operationId":"getHealth"`)

	require.NoError(t, s.index.Add("com.example.doc", testrelay.DIDs("doc", 3)))
	req, err := http.NewRequest(http.MethodGet,
		s.http.URL+listReposPath+"?collection=com.example.doc&collection=com.example.none&limit=2", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var page ListReposPage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, []string{source.BackfillComplete, source.BackfillIncomplete, source.BackfillNone}, resp.Header.Get(source.BackfillHeader))
	require.NotEmpty(t, resp.Header.Get("ETag"))

	code, body := s.do(t, http.MethodGet, listReposPath+"?collection=com.example.doc&limit=2")
	require.Equal(t, http.StatusOK, code)
	page = ListReposPage{}
	decodeStrict(t, body, &page)
	require.Equal(t, []ListReposRepo{{testrelay.DIDs("doc", 3)[0]}, {testrelay.DIDs("doc", 3)[1]}}, page.Repos)
	require.Equal(t, testrelay.DIDs("doc", 3)[1], page.Cursor)

	code, body = s.do(t, http.MethodGet, listReposPath+"?collection=not-an-nsid")
	require.Equal(t, http.StatusBadRequest, code)
	var xerr XRPCError
	decodeStrict(t, body, &xerr)
	require.Equal(t, "InvalidRequest", xerr.Error)
	require.NotEmpty(t, xerr.Message)

	// The count routes: public, XRPC errors, and their answers are the described types.
	for _, path := range []string{"/v1/listCollections", "/v1/collections"} {
		item := oapi.Paths[path]
		require.NotNil(t, item, path)
		require.NotNil(t, item.Get, path)
		require.Empty(t, item.Get.Security, path)
		require.Equal(t, "#/components/schemas/XRPCError", item.Get.Responses["400"].Content["application/json"].Schema.Ref, path)
		require.Contains(t, string(down), `"operationId":"`+item.Get.OperationID+`"`)
	}
	code, body = s.do(t, http.MethodGet, "/v1/listCollections?limit=50")
	require.Equal(t, http.StatusOK, code, body)
	var v1 ListCollectionsV1
	decodeStrict(t, body, &v1)
	require.Equal(t, ListCollectionsV1{Collections: map[string]int64{"com.example.doc": 3}}, v1)
	code, body = s.do(t, http.MethodGet, "/v1/collections?limit=1")
	require.Equal(t, http.StatusOK, code, body)
	var ordered CollectionsPage
	decodeStrict(t, body, &ordered)
	require.Equal(t, CollectionsPage{Collections: []CollectionCount{{"com.example.doc", 3}}}, ordered)
	code, body = s.do(t, http.MethodGet, "/v1/collections?limit=x")
	require.Equal(t, http.StatusBadRequest, code, body)
	xerr = XRPCError{}
	decodeStrict(t, body, &xerr)
	require.Equal(t, "InvalidRequest", xerr.Error)

	code, body = s.do(t, http.MethodGet, "/_health")
	require.Equal(t, http.StatusOK, code)
	var h healthOutput
	decodeStrict(t, body, &h)
	require.Equal(t, healthOutput{Status: "ok", Postgres: "ok", Index: "ok", Backfill: "none"}, h)
}
