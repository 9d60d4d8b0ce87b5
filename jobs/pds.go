package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"golang.org/x/time/rate"

	"github.com/colindex/colindex/metrics"
)

const (
	// DefaultPLCURL resolves did:plc.
	DefaultPLCURL = "https://plc.directory"
	// DefaultPDSRate is the request rate cap per PDS host: most PDSes are small, and one
	// account's burst of deletes must not look like an attack on its host.
	DefaultPDSRate = 5.0
	// DefaultPDSTimeout bounds one request to a PDS or to the DID resolver, body included.
	DefaultPDSTimeout = 10 * time.Second
	// plcRate caps DID resolutions at the PLC directory, which rate-limits its clients.
	plcRate = 10
	// maxPDSBody caps a PDS answer or a DID document: listRecords with limit=1 is a few KB,
	// and describeRepo lists at most the network's ~1,300 collections plus a DID document.
	maxPDSBody = 4 << 20
	// maxHostLimiters bounds the per-host limiters kept; past it, idle ones are dropped.
	maxHostLimiters = 50_000

	verifyUserAgent = "colindex (+https://github.com/colindex/colindex)"
)

// Errors a PDS answers for an account that is not (or no longer) served: the account's state,
// not a failure. RepoNotFound is taken as a deleted account.
var (
	errRepoNotFound    = errors.New("RepoNotFound")
	errRepoDeactivated = errors.New("RepoDeactivated")
	errRepoTakendown   = errors.New("RepoTakendown")
	errRepoSuspended   = errors.New("RepoSuspended")
)

// errMalformedAnswer is wrapped when a 200 answer is not what the method returns: never read
// as "no records", which would remove a pair on garbage.
var errMalformedAnswer = errors.New("malformed PDS answer")

// pdsError is a non-200 answer that names no account state.
type pdsError struct {
	Status        int
	Name, Message string
}

func (e *pdsError) Error() string {
	return fmt.Sprintf("PDS answered HTTP %d %s: %s", e.Status, e.Name, e.Message)
}

// pdsClient asks accounts' PDSes about their repos: resolve the DID to its PDS, wait for the
// host's rate cap, ask, decode. One is shared by every verify worker.
type pdsClient struct {
	dir     identity.Directory
	http    *http.Client
	rate    rate.Limit
	metrics *metrics.Metrics

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func newPDSClient(httpClient *http.Client, plcURL string, rps float64, m *metrics.Metrics) *pdsClient {
	c := &pdsClient{http: httpClient, rate: rate.Inf, metrics: m, limiters: map[string]*rate.Limiter{}}
	if rps > 0 {
		c.rate = rate.Limit(rps)
	}
	c.dir = &identity.BaseDirectory{
		PLCURL:     strings.TrimRight(plcURL, "/"),
		PLCLimiter: rate.NewLimiter(plcRate, plcRate),
		// A did:web document is served by the account's own host: same cap as a PDS host.
		DIDWebLimitFunc: func(ctx context.Context, host string) error {
			return c.limiter(net.JoinHostPort(strings.ToLower(host), "443")).Wait(ctx)
		},
		HTTPClient: *httpClient,
		// Only the PDS endpoint is needed: a handle check would add DNS and HTTP lookups.
		SkipHandleVerification: true,
		UserAgent:              verifyUserAgent,
	}
	return c
}

// limiter returns the rate cap of one host ("host:port").
func (c *pdsClient) limiter(host string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.limiters[host]
	if ok {
		return l
	}
	if len(c.limiters) >= maxHostLimiters {
		// A limiter with a full bucket remembers nothing: dropping it changes no wait.
		for h, old := range c.limiters {
			if old.Tokens() >= 1 {
				delete(c.limiters, h)
			}
		}
	}
	l = rate.NewLimiter(c.rate, 1)
	c.limiters[host] = l
	return l
}

// pdsOf resolves did to its PDS endpoint.
func (c *pdsClient) pdsOf(ctx context.Context, did syntax.DID) (*url.URL, error) {
	ident, err := c.dir.LookupDID(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", did, err)
	}
	ep := ident.PDSEndpoint()
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("resolve %s: no usable #atproto_pds endpoint (%q)", did, ep)
	}
	return u, nil
}

// get sends one XRPC query to did's PDS and decodes a 200 answer into out.
func (c *pdsClient) get(ctx context.Context, did syntax.DID, method string, q url.Values, out any) error {
	pds, err := c.pdsOf(ctx, did)
	if err != nil {
		return err
	}
	if err := c.limiter(hostKey(pds)).Wait(ctx); err != nil {
		return err
	}
	endpoint := strings.TrimRight(pds.String(), "/") + "/xrpc/" + method + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return fmt.Errorf("%s of %s: %w", method, did, err)
	}
	req.Header.Set("User-Agent", verifyUserAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.VerifyPDSResponses.WithLabelValues("error").Inc()
		return fmt.Errorf("%s of %s at %s: %w", method, did, pds.Host, err)
	}
	defer resp.Body.Close()
	c.metrics.VerifyPDSResponses.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	body, err := io.ReadAll(resp.Body) // capped by the transport (cappedBody)
	if err != nil {
		return fmt.Errorf("%s of %s at %s: read answer: %w", method, did, pds.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s of %s at %s: %w", method, did, pds.Host, decodePDSError(resp.StatusCode, body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return fmt.Errorf("%s of %s: %w: content type %q", method, did, errMalformedAnswer, truncate(ct, 100))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s of %s: %w: %v", method, did, errMalformedAnswer, err)
	}
	return nil
}

// hasRecords asks listRecords for one record of collection.
func (c *pdsClient) hasRecords(ctx context.Context, did syntax.DID, collection string) (bool, error) {
	var out struct {
		Records *[]json.RawMessage `json:"records"`
	}
	q := url.Values{"repo": {did.String()}, "collection": {collection}, "limit": {"1"}}
	if err := c.get(ctx, did, "com.atproto.repo.listRecords", q, &out); err != nil {
		return false, err
	}
	if out.Records == nil {
		return false, fmt.Errorf("listRecords of %s: %w: no records array", did, errMalformedAnswer)
	}
	return len(*out.Records) > 0, nil
}

// collections asks describeRepo for the account's collections.
func (c *pdsClient) collections(ctx context.Context, did syntax.DID) ([]string, error) {
	var out struct {
		DID         string    `json:"did"`
		Collections *[]string `json:"collections"`
	}
	if err := c.get(ctx, did, "com.atproto.repo.describeRepo", url.Values{"repo": {did.String()}}, &out); err != nil {
		return nil, err
	}
	if out.Collections == nil {
		return nil, fmt.Errorf("describeRepo of %s: %w: no collections array", did, errMalformedAnswer)
	}
	// An answer about another repo (a misrouted request, a confused PDS) must not reconcile this one.
	if out.DID != "" && out.DID != did.String() {
		return nil, fmt.Errorf("describeRepo of %s: %w: answer is about %s", did, errMalformedAnswer, truncate(out.DID, 200))
	}
	return *out.Collections, nil
}

// decodePDSError maps an XRPC error answer: account states to their sentinels, anything
// else to a pdsError (a failure, retried).
func decodePDSError(status int, body []byte) error {
	var xb struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &xb)
	for _, s := range []error{errRepoNotFound, errRepoDeactivated, errRepoTakendown, errRepoSuspended} {
		if xb.Error == s.Error() {
			return fmt.Errorf("%w: %s", s, truncate(xb.Message, 200))
		}
	}
	return &pdsError{Status: status, Name: truncate(xb.Error, 100), Message: truncate(xb.Message, 200)}
}

// hostKey names a PDS host for its rate cap: lowercased, with the default port explicit.
func hostKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if strings.EqualFold(u.Scheme, "http") {
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
