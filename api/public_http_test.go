package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/source"
)

// rawGet sends a request with headers ("Name: value") and no transparent decompression, and
// returns the response with its body read.
func (s *stack) rawGet(t *testing.T, method, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.http.URL+path, nil)
	require.NoError(t, err)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

func requireXRPCError(t *testing.T, body, name string) {
	t.Helper()
	var e map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	require.Equal(t, name, e["error"], body)
	msg, ok := e["message"].(string)
	require.True(t, ok && msg != "", "a message: %s", body)
}

const bigPage = "/xrpc/com.atproto.sync.listReposByCollection?collection=com.example.big&limit=200"

func TestListPagesAreGzippedWhenAsked(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	require.NoError(t, s.index.Add("com.example.big", testrelay.DIDs("big", 300)))
	plainResp, plain := s.rawGet(t, http.MethodGet, bigPage)
	require.Equal(t, http.StatusOK, plainResp.StatusCode)
	require.Empty(t, plainResp.Header.Get("Content-Encoding"))

	resp, zipped := s.rawGet(t, http.MethodGet, bigPage, "Accept-Encoding: br;q=1, gzip;q=0.8")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	require.Contains(t, resp.Header.Get("Vary"), "Accept-Encoding")
	require.Less(t, len(zipped), len(plain))
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	require.NoError(t, err)
	unzipped, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, string(plain), string(unzipped), "the same page, compressed")
	require.NotEqual(t, plainResp.Header.Get("ETag"), resp.Header.Get("ETag"), "each representation its own strong tag")

	// gzip;q=0 refuses it; a small answer (an error) is never compressed.
	resp, _ = s.rawGet(t, http.MethodGet, bigPage, "Accept-Encoding: gzip;q=0, identity")
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	resp, body := s.rawGet(t, http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection?collection=bad", "Accept-Encoding: gzip")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	requireXRPCError(t, string(body), "InvalidRequest")
}

func TestListPagesRevalidateWithETag(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	require.NoError(t, s.index.Add("com.example.big", testrelay.DIDs("big", 300)))
	resp, _ := s.rawGet(t, http.MethodGet, bigPage)
	tag := resp.Header.Get("ETag")
	require.Regexp(t, `^"[A-Za-z0-9_-]+"$`, tag, "a strong tag")
	require.Equal(t, listPageCacheControl, resp.Header.Get("Cache-Control"))

	for _, inm := range []string{tag, `"other", ` + tag, "W/" + tag, "*"} {
		resp, body := s.rawGet(t, http.MethodGet, bigPage, "If-None-Match: "+inm)
		require.Equal(t, http.StatusNotModified, resp.StatusCode, inm)
		require.Empty(t, body)
		require.Equal(t, tag, resp.Header.Get("ETag"))
		require.Equal(t, listPageCacheControl, resp.Header.Get("Cache-Control"))
	}
	// The gzip tag revalidates too.
	zresp, _ := s.rawGet(t, http.MethodGet, bigPage, "Accept-Encoding: gzip")
	resp, _ = s.rawGet(t, http.MethodGet, bigPage, "Accept-Encoding: gzip", "If-None-Match: "+zresp.Header.Get("ETag"))
	require.Equal(t, http.StatusNotModified, resp.StatusCode)

	// Another tag, or a changed page, is a full answer.
	resp, _ = s.rawGet(t, http.MethodGet, bigPage, `If-None-Match: "nope"`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, s.index.Add("com.example.big", []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}))
	resp, _ = s.rawGet(t, http.MethodGet, bigPage, "If-None-Match: "+tag)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a new DID on the page changes its tag")
	require.NotEqual(t, tag, resp.Header.Get("ETag"))

	// The backfill state is part of the answer: completing the collection changes the tag.
	tag = resp.Header.Get("ETag")
	require.Equal(t, source.BackfillNone, resp.Header.Get(source.BackfillHeader))
	s.setProgress(t, "com.example.big", true, false)
	resp, _ = s.rawGet(t, http.MethodGet, bigPage, "If-None-Match: "+tag)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, source.BackfillComplete, resp.Header.Get(source.BackfillHeader))
}

func TestPublicRoutesAnswerBrowsers(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	require.NoError(t, s.index.Add("com.example.big", testrelay.DIDs("big", 3)))
	for _, path := range []string{bigPage, "/_health", "/xrpc/com.example.nothing", "/v1/listCollections", "/v1/collections?limit=3"} {
		resp, _ := s.rawGet(t, http.MethodOptions, path, "Origin: https://app.example",
			"Access-Control-Request-Method: GET", "Access-Control-Request-Headers: if-none-match")
		require.Equal(t, http.StatusNoContent, resp.StatusCode, path)
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), path)
		require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "GET", path)
		require.Contains(t, strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "if-none-match", path)
	}
	resp, _ := s.rawGet(t, http.MethodGet, bigPage, "Origin: https://app.example")
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	exposed := resp.Header.Get("Access-Control-Expose-Headers")
	require.Contains(t, exposed, "ETag")
	require.Contains(t, exposed, source.BackfillHeader)

	resp, _ = s.rawGet(t, http.MethodGet, "/_health", "Origin: https://app.example")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

	// The admin side is not for other origins' pages.
	for _, method := range []string{http.MethodGet, http.MethodOptions} {
		resp, _ = s.rawGet(t, method, "/admin/backfill-collections", "Origin: https://app.example", adminAuth,
			"Access-Control-Request-Method: GET")
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), method)
	}
}

// Every error under /xrpc/ is {"error","message"} JSON, never cached, whatever went wrong.
func TestXRPCErrorsHaveTheXRPCShape(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, c := range []struct {
		method, path string
		status       int
		name         string
	}{
		{http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection?collection=a.b.c&limit=x", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodPost, "/xrpc/com.atproto.sync.listReposByCollection?collection=a.b.c", http.StatusMethodNotAllowed, "InvalidRequest"},
		{http.MethodDelete, "/xrpc/com.atproto.sync.listReposByCollection", http.StatusMethodNotAllowed, "InvalidRequest"},
		{http.MethodGet, "/xrpc/com.atproto.sync.getRepo?did=did:plc:x", http.StatusNotImplemented, "MethodNotImplemented"},
		{http.MethodPost, "/xrpc/com.example.unknown", http.StatusNotImplemented, "MethodNotImplemented"},
		{http.MethodGet, "/xrpc/", http.StatusNotImplemented, "MethodNotImplemented"},
		// A malformed escape is an error, not a parameter dropped (a lost cursor restarts a walk).
		{http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection?collection=a.b.c&cursor=%zz", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection?collection=%zz&collection=a.b.c", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodPost, "/_health", http.StatusMethodNotAllowed, "InvalidRequest"},
		// The count routes are public routes like the rest.
		{http.MethodPost, "/v1/listCollections", http.StatusMethodNotAllowed, "InvalidRequest"},
		{http.MethodDelete, "/v1/collections", http.StatusMethodNotAllowed, "InvalidRequest"},
		{http.MethodGet, "/v1/listCollections?limit=%zz", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodGet, "/v1/collections?limit=abc", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodGet, "/v1/collections?collection=not-an-nsid", http.StatusBadRequest, "InvalidRequest"},
		{http.MethodGet, "/v1/nope", http.StatusNotFound, "NotFound"},
		{http.MethodGet, "/v1/", http.StatusNotFound, "NotFound"},
	} {
		resp, body := s.rawGet(t, c.method, c.path)
		require.Equal(t, c.status, resp.StatusCode, "%s %s: %s", c.method, c.path, body)
		require.Contains(t, resp.Header.Get("Content-Type"), "application/json", c.path)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), c.path)
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), c.path)
		requireXRPCError(t, string(body), c.name)
		if c.status == http.StatusMethodNotAllowed {
			require.Contains(t, resp.Header.Get("Allow"), "GET")
		}
	}
	// A path nothing serves answers in the same shape, without CORS (it is not a public route).
	for _, path := range []string{"/", "/nope", "/admin/nope"} {
		resp, body := s.rawGet(t, http.MethodGet, path, "Origin: https://app.example")
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		requireXRPCError(t, string(body), "NotFound")
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), path)
	}
	// A path served with other methods is a 405 naming them, not a 404.
	for path, allow := range map[string]string{"/docs": "GET", "/admin/firehose": "GET"} {
		resp, body := s.rawGet(t, http.MethodDelete, path, adminAuth)
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s: %s", path, body)
		require.Contains(t, resp.Header.Get("Allow"), allow, path)
		requireXRPCError(t, string(body), "InvalidRequest")
	}
	// HEAD of a page: the headers of the GET, no body.
	resp, body := s.rawGet(t, http.MethodHead, "/xrpc/com.atproto.sync.listReposByCollection?collection=a.b.c")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)
	require.NotEmpty(t, resp.Header.Get("ETag"))
}

// The count routes get what list pages get: gzip when asked, a strong ETag that revalidates
// while the counts stand and changes when one moves.
func TestCountPagesAreGzippedAndRevalidate(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for i := range 60 { // well over gzipMinBytes of JSON
		require.NoError(t, s.index.Add(fmt.Sprintf("com.example.count%03d", i), testrelay.DIDs("count", 1+i%4)))
	}
	for _, path := range []string{"/v1/listCollections?limit=1000", "/v1/collections?limit=1000"} {
		plainResp, plain := s.rawGet(t, http.MethodGet, path)
		require.Equal(t, http.StatusOK, plainResp.StatusCode, path)
		require.Greater(t, len(plain), gzipMinBytes, path)
		require.Equal(t, countsCacheControl, plainResp.Header.Get("Cache-Control"))
		tag := plainResp.Header.Get("ETag")
		require.Regexp(t, `^"[A-Za-z0-9_-]+"$`, tag, path)

		resp, zipped := s.rawGet(t, http.MethodGet, path, "Accept-Encoding: gzip")
		require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"), path)
		require.Contains(t, resp.Header.Get("Vary"), "Accept-Encoding")
		zr, err := gzip.NewReader(bytes.NewReader(zipped))
		require.NoError(t, err)
		unzipped, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, string(plain), string(unzipped), path)

		resp, body := s.rawGet(t, http.MethodGet, path, "If-None-Match: "+tag)
		require.Equal(t, http.StatusNotModified, resp.StatusCode, path)
		require.Empty(t, body)
	}
	// One count moves: both tags change.
	before, _ := s.rawGet(t, http.MethodGet, "/v1/listCollections?limit=1000")
	require.NoError(t, s.index.Add("com.example.count007", []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}))
	after, _ := s.rawGet(t, http.MethodGet, "/v1/listCollections?limit=1000", "If-None-Match: "+before.Header.Get("ETag"))
	require.Equal(t, http.StatusOK, after.StatusCode, "a changed count is a full answer")
	require.NotEqual(t, before.Header.Get("ETag"), after.Header.Get("ETag"))
}

// RFC 9110's reading of Accept-Encoding: q-values and names in any case, and an explicit
// gzip;q=0 that a "*" does not override.
func TestAcceptsGzipReadsQValues(t *testing.T) {
	t.Parallel()
	for header, want := range map[string]bool{
		"":                   false,
		"gzip":               true,
		"GZIP":               true,
		"x-gzip":             true,
		"br, gzip;q=0.5":     true,
		"gzip;q=0":           false,
		"GZIP;Q=0":           false,
		"gzip; q=0.000":      false,
		"*":                  true,
		"*;q=0":              false,
		"gzip;q=0, *":        false,
		"*, gzip;q=0":        false,
		"identity":           false,
		"br;q=1, *;q=0.1":    true,
		"gzip;level=1;q=0.2": true,
	} {
		require.Equal(t, want, acceptsGzip(header), "%q", header)
	}
}
