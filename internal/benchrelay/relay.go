package benchrelay

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/colindex/colindex/source"
)

// Latency is what each listReposByCollection answer waits before it is sent.
type Latency struct {
	Base   time.Duration
	PerDID time.Duration
}

// Relay serves a Dataset over HTTP on loopback.
type Relay struct {
	*httptest.Server
	data    *Dataset
	latency Latency

	record bool // keep arrival times for Stats (the benchmark's relays only)
	mu     sync.Mutex
	times  []time.Time // when each listReposByCollection request arrived
}

// New starts a relay on loopback serving data with the given latency.
func New(data *Dataset, latency Latency) *Relay {
	r := &Relay{data: data, latency: latency, record: true}
	r.Server = httptest.NewServer(r.mux())
	return r
}

// Handler serves data with the given latency, for a server of the caller's own.
func Handler(data *Dataset, latency Latency) http.Handler {
	r := &Relay{data: data, latency: latency}
	return r.mux()
}

func (r *Relay) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.listReposByCollection", r.listRepos)
	mux.HandleFunc("GET /llms.txt", r.llmsTxt)
	return mux
}

// llmsTxt lists every collection (or those named in ?only=a,b) as Lexicon Garden links.
func (r *Relay) llmsTxt(w http.ResponseWriter, req *http.Request) {
	names := r.data.Names
	if only := req.URL.Query().Get("only"); only != "" {
		names = strings.Split(only, ",")
	}
	var b strings.Builder
	b.WriteString("# benchmark lexicons\n\n")
	for _, n := range names {
		b.WriteString("- [" + n + "](https://lexicon.garden/lexicon/did:plc:bench/" + n + ")\n")
	}
	_, _ = w.Write([]byte(b.String()))
}

func (r *Relay) listRepos(w http.ResponseWriter, req *http.Request) {
	arrived := time.Now()
	if r.record {
		r.mu.Lock()
		r.times = append(r.times, arrived)
		r.mu.Unlock()
	}

	q := req.URL.Query()
	i, ok := r.data.index[q.Get("collection")]
	if !ok {
		writeJSON(w, http.StatusOK, comatproto.SyncListReposByCollection_Output{Repos: []*comatproto.SyncListReposByCollection_Repo{}})
		return
	}
	limit := source.DefaultLimit
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, xrpc.XRPCError{ErrStr: "BadRequest", Message: "invalid limit"})
			return
		}
		limit = source.ClampLimit(v)
	}
	start := 0
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) != 13 || int(binary.BigEndian.Uint32(b)) != i {
			writeJSON(w, http.StatusInternalServerError, xrpc.XRPCError{ErrStr: "DatabaseError", Message: "bad cursor"})
			return
		}
		start = int(binary.BigEndian.Uint64(b[4:])) + 1
	}
	end := min(start+limit, r.data.Sizes[i])
	n := max(end-start, 0)
	body := r.data.appendPage(make([]byte, 0, 16+n*45+40), i, start, end, n == limit)

	if wait := r.latency.Base + time.Duration(n)*r.latency.PerDID - time.Since(arrived); wait > 0 {
		time.Sleep(wait)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// appendPage appends DIDs start..end-1 of collection i as a listReposByCollection page, with
// a cursor after the last when withCursor. The bytes are json.Marshal's of indigo's
// comatproto.SyncListReposByCollection_Output, cursor first as its struct declares it and as
// collectiondir sends it (TestPagesAreIndigosWireType). They are written by hand because the
// relay shares the benchmark's two cores with colindex: encoding a 10,000-DID page through
// the struct costs about seven times the CPU and 40,000 allocations.
func (d *Dataset) appendPage(body []byte, i, start, end int, withCursor bool) []byte {
	body = append(body, '{')
	if withCursor {
		var c [13]byte
		binary.BigEndian.PutUint32(c[:], uint32(i))
		binary.BigEndian.PutUint64(c[4:], uint64(end-1))
		body = append(body, `"cursor":"`...)
		body = append(body, base64.RawURLEncoding.EncodeToString(c[:])...)
		body = append(body, `",`...)
	}
	body = append(body, `"repos":[`...)
	for j := start; j < end; j++ {
		if j > start {
			body = append(body, ',')
		}
		body = append(body, `{"did":"`...)
		body = d.AppendDID(body, d.Account(i, j))
		body = append(body, `"}`...)
	}
	return append(body, "]}"...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Stats is what the relay saw.
type Stats struct {
	Requests int
	// PeakPerSecond is the most requests that arrived within any one second.
	PeakPerSecond int
}

// Stats reports and resets what the relay saw.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	times := r.times
	r.times = nil
	r.mu.Unlock()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	peak, lo := 0, 0
	for hi := range times {
		for times[hi].Sub(times[lo]) >= time.Second {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return Stats{Requests: len(times), PeakPerSecond: peak}
}
