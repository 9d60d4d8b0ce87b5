package source

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Source is a source relay as the operator named it and as colindex calls it.
type Source struct {
	// Name is what progress rows and the status show: a bare host ("bsky.network") or a
	// normalised URL ("http://127.0.0.1:2510").
	Name string
	// BaseURL is where XRPC calls go, without a trailing slash.
	BaseURL string
}

// maxSourceLen bounds the source value; real host names are at most 253 bytes.
const maxSourceLen = 300

// ErrInvalidSource is wrapped by every Parse error.
var ErrInvalidSource = errors.New("invalid source")

// Parse accepts a bare host ("bsky.network", meaning https) or an http(s)://host[:port] URL,
// and nothing else: no credentials, path, query or fragment, so an admin request can never
// point the backfill at a URL that carries secrets or an unexpected route.
func Parse(raw string) (Source, error) {
	if raw == "" {
		return Source{}, fmt.Errorf("%w: empty", ErrInvalidSource)
	}
	if len(raw) > maxSourceLen {
		return Source{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidSource, maxSourceLen)
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f {
			return Source{}, fmt.Errorf("%w: contains a space or control character", ErrInvalidSource)
		}
	}

	if !strings.Contains(raw, "://") {
		host := strings.ToLower(raw)
		if h, port, err := net.SplitHostPort(host); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return Source{}, fmt.Errorf("%w: bad port %q", ErrInvalidSource, port)
			}
			return Source{}, fmt.Errorf("%w: a port needs a scheme: write https://%s:%s (or http://)", ErrInvalidSource, h, port)
		}
		if err := checkHost(host); err != nil {
			return Source{}, err
		}
		return Source{Name: host, BaseURL: "https://" + host}, nil
	}

	u, err := url.Parse(raw)
	if err != nil {
		return Source{}, fmt.Errorf("%w: %v", ErrInvalidSource, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Source{}, fmt.Errorf("%w: scheme must be http or https, not %q", ErrInvalidSource, u.Scheme)
	case u.User != nil:
		return Source{}, fmt.Errorf("%w: credentials are not allowed in the URL", ErrInvalidSource)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.Opaque != "":
		return Source{}, fmt.Errorf("%w: only scheme, host and port are allowed", ErrInvalidSource)
	}
	host := strings.ToLower(u.Hostname())
	if err := checkHost(host); err != nil {
		return Source{}, err
	}
	hostport := host
	if strings.Contains(host, ":") { // IPv6 literal
		hostport = "[" + host + "]"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Source{}, fmt.Errorf("%w: bad port %q", ErrInvalidSource, p)
		}
		hostport += ":" + strconv.Itoa(n)
	}
	base := u.Scheme + "://" + hostport
	return Source{Name: base, BaseURL: base}, nil
}

// checkHost accepts an IP address or a DNS name of letters, digits, hyphens and dots.
func checkHost(host string) error {
	if host == "" {
		return fmt.Errorf("%w: no host", ErrInvalidSource)
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("%w: host longer than 253 bytes", ErrInvalidSource)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%w: %q is not a host name", ErrInvalidSource, host)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: %q is not a host name", ErrInvalidSource, host)
			}
		}
	}
	return nil
}
