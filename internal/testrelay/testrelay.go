// Package testrelay is a stand-in source relay for tests and benchmarks: an HTTP server that
// answers com.atproto.sync.listReposByCollection the way bsky.network's collectiondir does.
//
//   - Cursors are opaque: unpadded base64url of (per-instance collection id, first-seen
//     sequence, DID, a zero byte). They only work against the instance that issued them.
//   - Order is first-seen order; DIDs appended later show up at the end.
//   - A full page always carries a cursor, even when nothing follows, so the last call of a
//     collection often returns an empty list without a cursor.
//   - limit defaults to source.DefaultLimit (500) and is clamped to 1..source.MaxLimit
//     (10000); a non-numeric limit is a 400.
//   - Unknown collection: 200 with an empty list. Bad NSID: 400. Undecodable cursor: 500
//     DatabaseError.
//
// Pages and errors are indigo's generated types (comatproto.SyncListReposByCollection_Output,
// xrpc.XRPCError), so the stand-in cannot drift from the wire format the field uses. Faults
// are injected with Intercept; Starts reports where each page it served began.
package testrelay

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/colindex/colindex/source"
)

// Interceptor may answer a request itself (returning true) before the relay does: a fault.
// n counts listReposByCollection requests from 1.
type Interceptor func(w http.ResponseWriter, r *http.Request, n int64) bool

// Relay is a running stand-in source.
type Relay struct {
	*httptest.Server

	mu        sync.Mutex
	idBase    uint32
	ids       map[string]uint32
	dids      map[string][]string
	llmsTxt   string
	intercept Interceptor
	starts    map[string][]int // first-seen offset each served page started at, per collection

	requests atomic.Int64
}

// New starts a relay on loopback; it is closed when the test ends if t is given to Cleanup.
func New() *Relay {
	r := &Relay{
		idBase: rand.Uint32N(1 << 20),
		ids:    map[string]uint32{},
		dids:   map[string][]string{},
		starts: map[string][]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.listReposByCollection", r.listRepos)
	mux.HandleFunc("GET /llms.txt", func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		body := r.llmsTxt
		r.mu.Unlock()
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write([]byte(body))
	})
	r.Server = httptest.NewServer(mux)
	return r
}

// Append adds DIDs to the end of a collection, in first-seen order. A DID already in the
// collection is not added again (collectiondir keeps a DID once per collection).
func (r *Relay) Append(collection string, dids ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ids[collection]; !ok {
		r.ids[collection] = r.idBase + uint32(len(r.ids))
	}
	seen := make(map[string]bool, len(r.dids[collection]))
	for _, d := range r.dids[collection] {
		seen[d] = true
	}
	for _, d := range dids {
		if !seen[d] {
			seen[d] = true
			r.dids[collection] = append(r.dids[collection], d)
		}
	}
}

// Collection returns a copy of a collection's DIDs in first-seen order.
func (r *Relay) Collection(collection string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dids[collection]...)
}

// Collections returns every collection the relay holds.
func (r *Relay) Collections() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.dids))
	for c := range r.dids {
		out = append(out, c)
	}
	return out
}

// SetLLMsTxt sets the body served at /llms.txt.
func (r *Relay) SetLLMsTxt(body string) {
	r.mu.Lock()
	r.llmsTxt = body
	r.mu.Unlock()
}

// Intercept installs (or, with nil, removes) a fault injector.
func (r *Relay) Intercept(f Interceptor) {
	r.mu.Lock()
	r.intercept = f
	r.mu.Unlock()
}

// Starts returns, in order, the first-seen offset at which each page of a collection that
// the relay served began. A client that never pages past a committed cursor asks for
// non-decreasing offsets: the same offset again only when a page was not committed.
func (r *Relay) Starts(collection string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.starts[collection]...)
}

// Requests counts the listReposByCollection requests received.
func (r *Relay) Requests() int64 { return r.requests.Load() }

func (r *Relay) listRepos(w http.ResponseWriter, req *http.Request) {
	n := r.requests.Add(1)
	r.mu.Lock()
	intercept := r.intercept
	r.mu.Unlock()
	if intercept != nil && intercept(w, req, n) {
		return
	}

	q := req.URL.Query()
	collection := q.Get("collection")
	if _, err := syntax.ParseNSID(collection); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", "invalid collection: "+err.Error())
		return
	}
	limit := source.DefaultLimit
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "invalid limit")
			return
		}
		limit = source.ClampLimit(v)
	}

	r.mu.Lock()
	id, known := r.ids[collection]
	dids := r.dids[collection]
	r.mu.Unlock()

	start := 0
	if c := q.Get("cursor"); c != "" {
		seq, ok := decodeCursor(c, id)
		if !ok || !known {
			writeError(w, http.StatusInternalServerError, "DatabaseError", "failed to decode cursor")
			return
		}
		start = int(seq) + 1
	}
	r.mu.Lock()
	r.starts[collection] = append(r.starts[collection], start)
	r.mu.Unlock()
	// Repos is never nil: an empty page is "repos":[], not null, as collectiondir sends it.
	out := comatproto.SyncListReposByCollection_Output{Repos: []*comatproto.SyncListReposByCollection_Repo{}}
	for i := start; i < len(dids) && len(out.Repos) < limit; i++ {
		out.Repos = append(out.Repos, &comatproto.SyncListReposByCollection_Repo{Did: dids[i]})
	}
	if len(out.Repos) == limit {
		last := start + len(out.Repos) - 1
		cursor := encodeCursor(id, uint64(last), dids[last])
		out.Cursor = &cursor
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(out)
}

func encodeCursor(id uint32, seq uint64, did string) string {
	b := make([]byte, 12, 12+len(did)+1)
	binary.BigEndian.PutUint32(b, id)
	binary.BigEndian.PutUint64(b[4:], seq)
	b = append(b, did...)
	b = append(b, 0)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string, id uint32) (uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 14 || b[len(b)-1] != 0 || binary.BigEndian.Uint32(b) != id {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[4:]), true
}

// writeError answers in XRPC's error shape, indigo's xrpc.XRPCError, as collectiondir does.
func writeError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(xrpc.XRPCError{ErrStr: name, Message: msg})
}

// DIDs makes n distinct valid did:plc DIDs; the prefix keeps collections' sets apart (or,
// repeated, shared).
func DIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("did:plc:%s%0*d", prefix, 24-len(prefix), i)
	}
	return out
}

// LexiconList renders a Lexicon Garden llms.txt linking the given NSIDs in both of the
// site's link forms, with prose and non-lexicon links around them.
func LexiconList(nsids ...string) string {
	var b strings.Builder
	b.WriteString("# Lexicon Garden\n\nSome prose. [Home](https://lexicon.garden/) and [docs](https://lexicon.garden/docs/getting.started.guide).\n\n")
	for i, n := range nsids {
		suffix := ""
		if i%2 == 1 {
			suffix = "/llms.txt"
		}
		fmt.Fprintf(&b, "- [%s](https://lexicon.garden/lexicon/did:plc:abcdefghijklmnopqrstuvwx/%s%s)\n", n, n, suffix)
	}
	return b.String()
}
