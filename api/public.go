package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// The HTTP a reader expects on the public routes (/xrpc/…, /v1/… and /_health): CORS for
// browsers, Cache-Control, ETag revalidation and gzip on list pages, and XRPC's error shape for
// every error. The admin routes get none of this (no CORS in particular: a browser
// page elsewhere must not be invited to call them).

const listReposPath = "/xrpc/com.atproto.sync.listReposByCollection"

// listPageCacheControl: a page may be reused for a few seconds. The index moves with the
// firehose, so a longer life would hide new DIDs (and a change of Colindex-Backfill) for
// longer than the stream's own lag; a few seconds still lets a browser or a CDN absorb a
// burst of identical requests, and the ETag makes a later check cheap to transfer.
const listPageCacheControl = "public, max-age=5"

// gzipMinBytes: below this gzip saves too little to pay for its own header and CPU (the same
// threshold as klauspost's gzhttp). Errors and health answers stay under it.
const gzipMinBytes = 1024

// registerPublic mounts the public routes. Each is one handler for every HTTP method (no
// "GET " pattern), so that a wrong method, an unknown path under /xrpc/ or /v1/, or a path
// nothing serves still answers in XRPC's error shape rather than the mux's text.
func (s *Server) registerPublic(mux *http.ServeMux) {
	mux.Handle("/xrpc/", publicCORS(http.HandlerFunc(s.xrpc)))
	mux.Handle("/_health", publicCORS(readOnly(func(w http.ResponseWriter, r *http.Request) {
		// A probe must see the state now, never a cached one.
		w.Header().Set("Cache-Control", "no-store")
		s.health(w, r)
	})))
	mux.Handle("/v1/listCollections", publicCORS(readOnly(s.listCollectionsV1)))
	mux.Handle("/v1/collections", publicCORS(readOnly(s.listCollections)))
	mux.Handle("/v1/", publicCORS(http.HandlerFunc(notFound)))
	// Everything else: the admin routes, River UI and the documents have their own patterns,
	// which win over this one. No CORS here: it is not a public route.
	mux.Handle("/", noRoute(mux))
}

// noRoute answers what no other pattern took: 405 with Allow when the path is served with
// other methods (this pattern, taking every method, would otherwise turn the mux's own 405
// into a 404), else 404.
func noRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			other := r.Clone(r.Context())
			other.Method = m
			if _, pattern := mux.Handler(other); pattern != "/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			notFound(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeXRPCError(w, http.StatusMethodNotAllowed, "InvalidRequest",
			"incorrect HTTP method ("+r.Method+"), expected "+strings.Join(allow, " or "))
	})
}

// readOnly answers 405 in XRPC's shape to a method other than GET or HEAD.
func readOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readMethod(w, r) {
			h(w, r)
		}
	})
}

// readMethod admits GET and HEAD, and answers anything else 405 in XRPC's shape.
func readMethod(w http.ResponseWriter, r *http.Request) bool {
	if allowRead(w, r) {
		return true
	}
	writeXRPCError(w, http.StatusMethodNotAllowed, "InvalidRequest", "incorrect HTTP method ("+r.Method+"), expected GET")
	return false
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeXRPCError(w, http.StatusNotFound, "NotFound", "no route for "+r.URL.Path)
}

// xrpc routes the XRPC methods this server implements.
func (s *Server) xrpc(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case listReposPath:
		if readMethod(w, r) {
			s.listReposByCollection(w, r)
		}
	default:
		// 501 as atproto's own servers answer: to an XRPC client a 404 means "no XRPC here
		// at all", MethodNotImplemented means "not this method".
		writeXRPCError(w, http.StatusNotImplemented, "MethodNotImplemented",
			"method not implemented: "+strings.TrimPrefix(r.URL.Path, "/xrpc/"))
	}
}

// allowRead admits GET and HEAD (the mux's "GET" patterns do the same); otherwise it sets
// Allow and returns false.
func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD, OPTIONS")
	return false
}

// publicCORS lets any web page read the public routes: they need no credentials, so "*" is
// right and no Origin is echoed. It answers preflights itself.
func publicCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		// Cache-Control and Content-Type are readable anyway; these are not.
		h.Set("Access-Control-Expose-Headers", "ETag, Colindex-Backfill")
		if r.Method == http.MethodOptions {
			h.Set("Allow", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
				// Nothing here depends on a request header beyond If-None-Match and
				// Accept-Encoding, and no credentials are involved: any may be sent.
				h.Set("Access-Control-Allow-Headers", asked)
			}
			h.Set("Access-Control-Max-Age", "86400")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeCacheable answers 200 with body (JSON), or 304 when the client's If-None-Match names
// it. The ETag is a hash of the body and the backfill state (a header that changes without
// the body must still change the tag); the gzip encoding of the same body gets its own
// strong tag, as RFC 9110 requires of a different representation. The hash is xxHash64: a
// tag only tells versions of one page apart, where 64 bits leave a chance of 2^-64 that a
// changed page keeps its tag, and it is a seventh of SHA-256's cost on a 1000-DID page (the
// read benchmark had SHA-256 at about 4% of the server's CPU).
func writeCacheable(w http.ResponseWriter, r *http.Request, body []byte, state, cacheControl string) {
	sum := xxhash.New()
	_, _ = sum.Write(body)
	_, _ = sum.WriteString(state)
	var digest [8]byte
	tag := base64.RawURLEncoding.EncodeToString(sum.Sum(digest[:0]))
	plainTag, gzipTag := `"`+tag+`"`, `"`+tag+`-gz"`
	h := w.Header()
	h.Set("Cache-Control", cacheControl)
	h.Set("Vary", "Accept-Encoding")
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if m := matchETag(inm, plainTag, gzipTag); m != "" {
			h.Set("ETag", m)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	if len(body) >= gzipMinBytes && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		zbuf := getBuffer()
		defer putBuffer(zbuf)
		*zbuf = gzipAppend((*zbuf)[:0], body)
		h.Set("ETag", gzipTag)
		h.Set("Content-Encoding", "gzip")
		h.Set("Content-Length", strconv.Itoa(len(*zbuf)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(*zbuf)
		return
	}
	h.Set("ETag", plainTag)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// matchETag applies If-None-Match's weak comparison (RFC 9110 13.1.2) and returns the tag
// that matched ("" for none). "*" matches any current page.
func matchETag(header string, tags ...string) string {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" {
			return tags[0]
		}
		for _, tag := range tags {
			if t == tag {
				return tag
			}
		}
	}
	return ""
}

// acceptsGzip says whether an Accept-Encoding value admits gzip (RFC 9110 12.5.3): named
// (gzip or x-gzip) with a q-value above 0, or not named and covered by a "*" above 0. Names and
// parameters are case-insensitive.
func acceptsGzip(header string) bool {
	named, star := -1.0, -1.0 // q-values; -1: not in the header
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "gzip", "x-gzip":
			named = max(named, q)
		case "*":
			star = max(star, q)
		}
	}
	if named >= 0 {
		return named > 0
	}
	return star > 0
}

// gzip writers are reused: each holds about 1 MB of compressor state. BestSpeed, because a
// page of DIDs compresses about 2:1 at any level and the CPU is better spent on answers.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

func gzipAppend(dst, body []byte) []byte {
	out := bytes.NewBuffer(dst)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(out)
	_, _ = zw.Write(body)
	_ = zw.Close()
	gzipWriters.Put(zw)
	return out.Bytes()
}

// Page buffers are reused across requests; one over 1 MiB (a 10,000-DID page is about
// 420 KB) is left to the collector rather than kept.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= 1<<20 {
		buffers.Put(b)
	}
}
