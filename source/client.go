package source

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
	"sync/atomic"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/colindex/colindex/metrics"
)

const (
	// MaxPageBytes caps one listReposByCollection response. 10,000 did:plc entries take about
	// 450 KB; the cap leaves room for long did:web DIDs and still stops a runaway body.
	MaxPageBytes = 32 << 20
	// RequestTimeout bounds one request, headers and body. It stays well under the page
	// job's timeout so a hung source fails the request, not the job's lease.
	RequestTimeout = 10 * time.Second

	userAgent = "colindex (+https://github.com/colindex/colindex)"
)

// methodListReposByCollection is the XRPC method of the backfill's pages.
const methodListReposByCollection = "com.atproto.sync.listReposByCollection"

// Page is one decoded listReposByCollection response. DIDs are as the source sent them,
// unvalidated. Cursor is empty on the last page.
type Page struct {
	DIDs   []string
	Cursor string
	// Waited is the time spent waiting for the rate limiter and the source (request sent to
	// body read), so callers can tell their own overhead from the source's latency.
	Waited time.Duration
}

// XRPCError is a non-200 answer from the source, with its XRPC error body when it sent one.
type XRPCError struct {
	Status  int
	Name    string // the body's "error", e.g. "BadRequest"
	Message string
}

func (e *XRPCError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("source answered HTTP %d", e.Status)
	}
	return fmt.Sprintf("source answered HTTP %d %s: %s", e.Status, e.Name, e.Message)
}

// ErrMalformedPage is wrapped when a 200 response is not a listReposByCollection page.
var ErrMalformedPage = errors.New("malformed page")

// Client fetches from source relays. One Client is shared by every worker: one connection
// pool, one rate limiter per source.
type Client struct {
	http    *http.Client
	rps     float64
	metrics *metrics.Metrics

	mu        sync.Mutex
	throttles map[string]*throttle
	// replicaOf is the origin of the colindex this one replicates (peer.go), or nil.
	replicaOf atomic.Value
}

// Option adjusts a Client built by NewClient.
type Option func(*Client)

// WithMetrics records the client's requests in m (serve passes the process's one set).
// Without it the client records into a private metrics.New() that nothing serves: the
// option is only left out where no one reads the figures (tools, tests of other things).
func WithMetrics(m *metrics.Metrics) Option {
	return func(c *Client) {
		if m != nil {
			c.metrics = m
		}
	}
}

// NewClient returns a client that sends at most rps requests per second to any one source
// (0 means no cap).
func NewClient(rps float64, opts ...Option) *Client {
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: RequestTimeout,
	}
	c := &Client{
		http:      &http.Client{Transport: transport, Timeout: RequestTimeout, CheckRedirect: CheckRedirect},
		rps:       rps,
		throttles: map[string]*throttle{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.metrics == nil {
		c.metrics = metrics.New()
	}
	return c
}

// HTTP is the shared HTTP client, for other fetches (the lexicon list). It follows only
// redirects that stay on the request's origin (ErrCrossHostRedirect).
func (c *Client) HTTP() *http.Client { return c.http }

// throttle returns the source's rate limiter, keyed by origin (scheme, host, port with the
// default port explicit): "bsky.network", "https://bsky.network" and
// "https://bsky.network:443" are one server and share one cap, not three.
func (c *Client) throttle(src Source) *throttle {
	key := originOf(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.throttles[key]
	if !ok {
		t = newThrottle(key, c.rps, c.metrics.SourceThrottled)
		c.throttles[key] = t
	}
	return t
}

// PageRequest asks for one page of a collection.
type PageRequest struct {
	Collection string
	Cursor     string // "" for the first page
	Limit      int
	// Priority orders requests waiting for the source's rate cap: higher goes first.
	Priority int64
}

// ListRepos fetches one page of collection from src, starting at cursor ("" for the first),
// at the lowest priority.
func (c *Client) ListRepos(ctx context.Context, src Source, collection, cursor string, limit int) (Page, error) {
	return c.Fetch(ctx, src, PageRequest{Collection: collection, Cursor: cursor, Limit: limit})
}

// Fetch fetches one page from src.
func (c *Client) Fetch(ctx context.Context, src Source, req PageRequest) (Page, error) {
	waitStart := time.Now()
	th := c.throttle(src)
	if err := th.wait(ctx, req.Priority); err != nil {
		return Page{}, err
	}
	q := url.Values{"collection": {req.Collection}, "limit": {strconv.Itoa(req.Limit)}}
	if req.Cursor != "" {
		q.Set("cursor", req.Cursor)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet,
		src.BaseURL+"/xrpc/"+methodListReposByCollection+"?"+q.Encode(), nil)
	if err != nil {
		return Page{}, err
	}
	hreq.Header.Set("User-Agent", userAgent)
	hreq.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := c.http.Do(hreq)
	if err != nil {
		c.metrics.SourceResponses.WithLabelValues(methodListReposByCollection, "error").Inc()
		return Page{}, err
	}
	defer resp.Body.Close()
	c.metrics.SourceResponses.WithLabelValues(methodListReposByCollection, strconv.Itoa(resp.StatusCode)).Inc()
	if hold := th.observe(resp, time.Now()); resp.StatusCode == http.StatusTooManyRequests {
		return Page{}, &RateLimitedError{Source: src.Name, Wait: hold}
	}

	body, err := readCapped(resp.Body, MaxPageBytes)
	c.metrics.SourceRequestSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return Page{}, err
	}
	waited := time.Since(waitStart)
	if resp.StatusCode != http.StatusOK {
		return Page{}, decodeXRPCError(resp.StatusCode, body)
	}
	if err := checkUpstream(resp.Header, src, req.Collection, c.isReplicaPeer(src)); err != nil {
		return Page{}, err
	}
	// A proxy's HTML error page or anything else that is not JSON is not a page.
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return Page{}, fmt.Errorf("%w: content type %q", ErrMalformedPage, truncate(ct, 100))
	}
	page, err := decodePage(body)
	page.Waited = waited
	return page, err
}

// readCapped reads all of r, failing when it holds more than max bytes.
func readCapped(r io.Reader, max int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("response larger than %d bytes", max)
	}
	return body, nil
}

// decodePage decodes a listReposByCollection body into indigo's generated type for it. A
// body without a repos array (absent or null: both leave the slice nil, while [] does not)
// is refused rather than read as an empty last page: that would mark a collection complete
// on garbage. A null entry is kept as an empty DID, which the page worker skips and counts
// as invalid like any other bad DID.
func decodePage(body []byte) (Page, error) {
	var out comatproto.SyncListReposByCollection_Output
	if err := json.Unmarshal(body, &out); err != nil {
		return Page{}, fmt.Errorf("%w: %v", ErrMalformedPage, err)
	}
	if out.Repos == nil {
		return Page{}, fmt.Errorf("%w: no repos array", ErrMalformedPage)
	}
	dids := make([]string, len(out.Repos))
	for i, r := range out.Repos {
		if r != nil {
			dids[i] = r.Did
		}
	}
	var cursor string
	if out.Cursor != nil {
		cursor = *out.Cursor
	}
	return Page{DIDs: dids, Cursor: cursor}, nil
}

// decodeXRPCError reads XRPC's error body (indigo's xrpc.XRPCError) when there is one; a
// body that is not one still yields the status.
func decodeXRPCError(status int, body []byte) error {
	e := &XRPCError{Status: status}
	var xb xrpc.XRPCError
	if json.Unmarshal(body, &xb) == nil {
		e.Name, e.Message = truncate(xb.ErrStr, 100), truncate(xb.Message, 500)
	}
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
