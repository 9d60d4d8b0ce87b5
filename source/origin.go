package source

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// maxRedirects bounds the same-origin redirects one request follows (net/http's default is 10).
const maxRedirects = 5

// ErrCrossHostRedirect is wrapped when a source (or the lexicon list) redirects to another
// scheme, host or port. Following it would let a third-party source point colindex at any
// address it can reach, internal ones included; a same-origin redirect is still followed.
var ErrCrossHostRedirect = errors.New("redirect to another origin refused")

// origin is u's scheme, host and port with the default port made explicit, so that every
// spelling of one server ("bsky.network", "https://bsky.network", "https://bsky.network:443")
// names the same thing.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// originOf is origin for a source: its BaseURL, which Parse always builds as scheme://host[:port].
func originOf(src Source) string {
	u, err := url.Parse(src.BaseURL)
	if err != nil || u.Host == "" {
		return src.Name // not from Parse: its own key, as before
	}
	return origin(u)
}

// CheckRedirect is the redirect policy of colindex's outgoing HTTP clients (sources, the
// lexicon list, PDS checks): only redirects that stay on the first request's origin, and at
// most maxRedirects of them.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	from, to := origin(via[0].URL), origin(req.URL)
	if from != to {
		return fmt.Errorf("%w: %s redirected to %s; a server may only redirect within its own scheme, host and port",
			ErrCrossHostRedirect, from, to)
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("%s: stopped after %d redirects", from, maxRedirects)
	}
	return nil
}
