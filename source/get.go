package source

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Get asks src for path (an XRPC path with its query) at the lowest priority, paced by the
// source's rate cap and holding off after its 429s and RateLimit headers, as pages are: a
// relay's account sweep shares the cap of the backfill's source when they are one host
// (bsky.network is both). It returns the status and at most max bytes of the body, or a
// RateLimitedError when the source's hold or the cap's queue is long: the caller should wait,
// not fail.
func (c *Client) Get(ctx context.Context, src Source, path string, max int64) (int, []byte, error) {
	th := c.throttle(src)
	if err := th.wait(ctx, 0); err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.BaseURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	method := xrpcMethod(path)
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.SourceResponses.WithLabelValues(method, "error").Inc()
		return 0, nil, err
	}
	defer resp.Body.Close()
	c.metrics.SourceResponses.WithLabelValues(method, strconv.Itoa(resp.StatusCode)).Inc()
	if hold := th.observe(resp, time.Now()); resp.StatusCode == http.StatusTooManyRequests {
		return 0, nil, &RateLimitedError{Source: src.Name, Wait: hold}
	}
	body, err := readCapped(resp.Body, max)
	return resp.StatusCode, body, err
}

// sourceMethods are the XRPC methods colindex asks sources for: the metrics' label values.
var sourceMethods = map[string]bool{
	methodListReposByCollection:      true,
	"com.atproto.sync.listRepos":     true,
	"com.atproto.sync.getRepoStatus": true,
}

// xrpcMethod is the XRPC method path asks for ("/xrpc/<method>?query"), the metrics' label
// for a request: one of sourceMethods, else "other", so no path grows the label's values.
func xrpcMethod(path string) string {
	m, ok := strings.CutPrefix(path, "/xrpc/")
	if !ok {
		return "other"
	}
	m, _, _ = strings.Cut(m, "?")
	if !sourceMethods[m] {
		return "other"
	}
	return m
}
