// Package fakepds is a stand-in for the parts of the atproto network the verify jobs ask, on
// loopback: a PLC directory, a PDS hosting every account, and a TLS host serving did:web
// documents. Tests set each account's records and make the PDS fail on demand; cmd/benchrelay
// serves its PLC directory and PDS beside its local firehose (Local).
package fakepds

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fault is how the PDS answers for one account instead of its repo.
type Fault int

const (
	NoFault Fault = iota
	// ServerError answers 500 with an XRPC InternalServerError body.
	ServerError
	// RepoNotFound, RepoDeactivated, RepoTakendown and RepoSuspended answer 400 with that
	// XRPC error name, as a PDS does for an account it no longer serves.
	RepoNotFound
	RepoDeactivated
	RepoTakendown
	RepoSuspended
	// Malformed answers 200 with a JSON object that lacks the method's list (records,
	// collections): what a broken proxy or PDS might send.
	Malformed
)

var faultNames = map[Fault]string{
	RepoNotFound: "RepoNotFound", RepoDeactivated: "RepoDeactivated",
	RepoTakendown: "RepoTakendown", RepoSuspended: "RepoSuspended",
}

// WebDomain is the domain did:web accounts must be under: the TLS test certificate of
// net/http/httptest covers example.com and *.example.com.
const WebDomain = "example.com"

// Server is the stand-in network. Create it with New (its own servers) or Local (served by
// the caller; WebTransport needs New); Close it when done.
type Server struct {
	PLC *httptest.Server // GET /{did} answers did:plc documents
	PDS *httptest.Server // com.atproto.repo.listRecords and describeRepo
	Web *httptest.Server // TLS; GET /.well-known/did.json answers for did:web:{Host}

	mu       sync.Mutex
	accounts map[string]*account
	delay    time.Duration
	held     chan struct{} // closed on release; nil when not holding
	requests map[string]int
	answered func(did string) // SetAnswered
}

type account struct {
	records map[string]int // collection → record count
	fault   Fault
}

// New starts the three servers.
func New() *Server {
	s := Local()
	s.PLC = httptest.NewServer(http.HandlerFunc(s.servePLC))
	s.PDS = httptest.NewServer(http.HandlerFunc(s.servePDS))
	s.Web = httptest.NewTLSServer(http.HandlerFunc(s.serveWeb))
	return s
}

// Local is a PLC directory and PDS that the caller serves (ServePLC, ServePDS) on an address
// of its own, both on one: its DID documents name as the PDS the host they were asked of.
// PLC, PDS and Web are nil.
func Local() *Server {
	return &Server{accounts: map[string]*account{}, requests: map[string]int{}}
}

// ServePLC answers GET /{did} with the account's did:plc document.
func (s *Server) ServePLC(w http.ResponseWriter, r *http.Request) { s.servePLC(w, r) }

// ServePDS answers com.atproto.repo.listRecords and describeRepo.
func (s *Server) ServePDS(w http.ResponseWriter, r *http.Request) { s.servePDS(w, r) }

// Close stops the servers, releasing any held request first.
func (s *Server) Close() {
	s.Release()
	for _, srv := range []*httptest.Server{s.PLC, s.PDS, s.Web} {
		if srv != nil {
			srv.Close()
		}
	}
}

// SetRecords sets how many records did has in collection (0: none), creating the account.
func (s *Server) SetRecords(did, collection string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account(did)
	if n <= 0 {
		delete(a.records, collection)
		return
	}
	a.records[collection] = n
}

// AddAccount creates did with one record in each of collections.
func (s *Server) AddAccount(did string, collections ...string) {
	for _, c := range collections {
		s.SetRecords(did, c, 1)
	}
	s.mu.Lock()
	s.account(did)
	s.mu.Unlock()
}

// SetFault makes the PDS answer every request about did with f (NoFault: its repo again).
func (s *Server) SetFault(did string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account(did).fault = f
}

// SetDelay makes every PDS request wait d before answering (or until the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Hold makes PDS requests wait until Release (or until the client gives up): a check that
// is running, for as long as a test needs.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// Release lets held requests, and later ones, answer.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// SetAnswered calls fn with the account of each PDS request after its answer is decided and
// before it is sent: what happens in fn (a create reaching the stream, say) happens after the
// PDS answered and before the client reads the answer. nil removes it.
func (s *Server) SetAnswered(fn func(did string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered = fn
}

// Requests is how many PDS requests about did have arrived (counted on arrival).
func (s *Server) Requests(did string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[did]
}

// WebTransport points a client's transport at Web for every host under WebDomain and
// trusts Web's certificate: did:web resolution, which is always https on port 443, reaches
// the stand-in. Other hosts dial as before.
func (s *Server) WebTransport(t *http.Transport) {
	addr := s.Web.Listener.Addr().String()
	next := t.DialContext
	if next == nil {
		next = (&net.Dialer{}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, target string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(target)
		if err == nil && (host == WebDomain || strings.HasSuffix(host, "."+WebDomain)) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		return next(ctx, network, target)
	}
	roots := s.Web.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// account returns did's account, creating it. Callers hold mu.
func (s *Server) account(did string) *account {
	a, ok := s.accounts[did]
	if !ok {
		a = &account{records: map[string]int{}}
		s.accounts[did] = a
	}
	return a
}

// document is did's DID document; its PDS is the PDS server's, or for a Local one the host r
// was sent to.
func (s *Server) document(did string, r *http.Request) map[string]any {
	pds := "http://" + r.Host
	if s.PDS != nil {
		pds = s.PDS.URL
	}
	return map[string]any{
		"@context":    []string{"https://www.w3.org/ns/did/v1"},
		"id":          did,
		"alsoKnownAs": []string{"at://" + strings.ReplaceAll(strings.TrimPrefix(did, "did:"), ":", "-") + ".test"},
		"service": []map[string]string{{
			"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds,
		}},
	}
}

func (s *Server) known(did string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.accounts[did]
	return ok
}

func (s *Server) servePLC(w http.ResponseWriter, r *http.Request) {
	did := strings.TrimPrefix(r.URL.Path, "/")
	if !strings.HasPrefix(did, "did:plc:") || !s.known(did) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "DID not registered: " + did})
		return
	}
	writeJSON(w, http.StatusOK, s.document(did, r))
}

func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	did := "did:web:" + host
	if r.URL.Path != "/.well-known/did.json" || !s.known(did) {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, s.document(did, r))
}

func (s *Server) servePDS(w http.ResponseWriter, r *http.Request) {
	did := r.URL.Query().Get("repo")
	s.mu.Lock()
	s.requests[did]++
	delay, held := s.delay, s.held
	s.mu.Unlock()
	if !wait(r.Context(), delay, held) {
		return
	}

	s.mu.Lock()
	a, ok := s.accounts[did]
	var fault Fault
	colls := []string{} // a repo with no record lists none: [], not null
	var count int
	if ok {
		fault = a.fault
		for c := range a.records {
			colls = append(colls, c)
		}
		count = a.records[r.URL.Query().Get("collection")]
	}
	answered := s.answered
	s.mu.Unlock()
	slices.Sort(colls)
	if answered != nil {
		answered(did)
	}

	switch {
	case !ok:
		xrpcError(w, http.StatusBadRequest, "RepoNotFound", "Could not find repo: "+did)
		return
	case fault == ServerError:
		xrpcError(w, http.StatusInternalServerError, "InternalServerError", "Internal Server Error")
		return
	case fault == Malformed:
		writeJSON(w, http.StatusOK, map[string]string{"did": did})
		return
	case fault != NoFault:
		xrpcError(w, http.StatusBadRequest, faultNames[fault], "Repo is not available: "+did)
		return
	}
	switch r.URL.Path {
	case "/xrpc/com.atproto.repo.listRecords":
		coll := r.URL.Query().Get("collection")
		records := []map[string]any{}
		if count > 0 {
			records = append(records, map[string]any{
				"uri": fmt.Sprintf("at://%s/%s/3kaaaaaaaaaa2", did, coll), "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
				"value": map[string]any{"$type": coll},
			})
		}
		out := map[string]any{"records": records}
		if count > 1 {
			out["cursor"] = "3kaaaaaaaaaa2"
		}
		writeJSON(w, http.StatusOK, out)
	case "/xrpc/com.atproto.repo.describeRepo":
		writeJSON(w, http.StatusOK, map[string]any{
			"handle": "handle.invalid", "did": did, "didDoc": s.document(did, r),
			"collections": colls, "handleIsCorrect": false,
		})
	default:
		xrpcError(w, http.StatusNotImplemented, "MethodNotImplemented", "Method Not Implemented")
	}
}

// wait waits out the delay and the hold; false when the client went away first.
func wait(ctx context.Context, delay time.Duration, held chan struct{}) bool {
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	if held != nil {
		select {
		case <-ctx.Done():
			return false
		case <-held:
		}
	}
	return true
}

func xrpcError(w http.ResponseWriter, status int, name, msg string) {
	writeJSON(w, status, map[string]string{"error": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
