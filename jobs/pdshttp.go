package jobs

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/util/ssrf"
	"github.com/colindex/colindex/source"
)

// errBodyTooLarge is returned by a read past maxPDSBody.
var errBodyTooLarge = fmt.Errorf("answer larger than %d bytes", maxPDSBody)

// verifyHTTPOptions build the verify jobs' HTTP client.
type verifyHTTPOptions struct {
	timeout time.Duration
	// plcURL's host is the one private address always allowed: the operator chose it.
	plcURL string
	// allowPrivate lets every request reach loopback and private addresses.
	allowPrivate bool
	// tweak, when set (tests only), adjusts the transport (dial, TLS roots).
	tweak func(*http.Transport)
}

// newVerifyHTTP is the client for DID resolution and PDS requests. Unlike the source relay,
// every address here comes from a DID document, which anyone can write: so requests may only
// reach public addresses on ports 80 and 443 (indigo's ssrf rules, checked on the address
// actually dialed), except the operator's PLC directory; redirects stay on their origin;
// answers are capped at maxPDSBody; each request is bounded by timeout.
func newVerifyHTTP(o verifyHTTPOptions) *http.Client {
	plain := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	public := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: ssrf.PublicOnlyControl}
	plcAddr := ""
	if u, err := url.Parse(o.plcURL); err == nil && u.Host != "" {
		plcAddr = hostKey(u)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if o.allowPrivate || strings.EqualFold(addr, plcAddr) {
			return plain.DialContext(ctx, network, addr)
		}
		return public.DialContext(ctx, network, addr)
	}
	transport := &http.Transport{
		// No proxy: the address check must see the address the request goes to.
		Proxy:                 nil,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: o.timeout,
	}
	if o.tweak != nil {
		o.tweak(transport)
	}
	return &http.Client{
		Transport:     capTransport{rt: transport, max: maxPDSBody},
		Timeout:       o.timeout,
		CheckRedirect: source.CheckRedirect,
	}
}

// capTransport caps every response body, so that indigo's DID resolution (which reads a
// document whole) is bounded too.
type capTransport struct {
	rt  http.RoundTripper
	max int64
}

func (t capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.max}
	return resp, nil
}

// cappedBody fails a read past its limit rather than truncating: a cut JSON document must
// not decode as a shorter valid one.
type cappedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.rc.Read(probe[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
