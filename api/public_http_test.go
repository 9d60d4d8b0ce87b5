package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
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
	for _, path := range []string{bigPage, "/_health", "/xrpc/com.example.nothing"} {
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
	// HEAD of a page: the headers of the GET, no body.
	resp, body := s.rawGet(t, http.MethodHead, "/xrpc/com.atproto.sync.listReposByCollection?collection=a.b.c")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, body)
	require.NotEmpty(t, resp.Header.Get("ETag"))
}
