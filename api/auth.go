package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// adminSecurityScheme names the bearer scheme in the OpenAPI document.
const adminSecurityScheme = "adminBearer"

// password checks the admin password in constant time. Both sides are hashed first so the
// comparison takes as long whatever the length of the guess.
type password [sha256.Size]byte

func newPassword(p string) password { return sha256.Sum256([]byte(p)) }

func (p password) matches(guess string) bool {
	g := sha256.Sum256([]byte(guess))
	return subtle.ConstantTimeCompare(g[:], p[:]) == 1
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// basicPassword returns the password of an "Authorization: Basic <base64(user:password)>"
// header (any user name), parsed as net/http's Request.BasicAuth does.
func basicPassword(header string) (string, bool) {
	scheme, encoded, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", false
	}
	_, pass, ok := strings.Cut(string(decoded), ":")
	return pass, ok
}

// credentials is what a request's Authorization header amounts to.
type credentials int

const (
	// noCredentials: no Authorization header. Answered 401 (so a browser shows its login
	// prompt) but never counted as a failed login: a crawler or a health checker that
	// knows nothing about the password must not slow down the clients that share its address.
	noCredentials credentials = iota
	rightCredentials
	// wrongCredentials: a header that does not carry the password in an accepted scheme
	// (a wrong token, a malformed header, Basic where only a bearer is accepted). Counted.
	wrongCredentials
)

// check compares the password a header carries; Basic counts only when allowBasic.
func (p password) check(header string, allowBasic bool) credentials {
	if header == "" {
		return noCredentials
	}
	if token, ok := bearerToken(header); ok && p.matches(token) {
		return rightCredentials
	}
	if pass, ok := basicPassword(header); ok && allowBasic && p.matches(pass) {
		return rightCredentials
	}
	return wrongCredentials
}

// loginOutcome is how an admin request is answered.
type loginOutcome struct {
	status int           // 0: serve the request; 401 or 429 otherwise
	wait   time.Duration // for 429: when the client may guess again
}

// admit decides an admin request from its credentials and its client's failed logins.
// The right password is always served, even while its address is slowed: behind a reverse
// proxy every client shares one address, and one guesser must not lock out the admin and
// Prometheus. Missing credentials never count. Only wrong credentials spend the client's
// allowance, and once it is spent they are answered 429 with Retry-After instead of 401.
//
// The price, taken knowingly: to let the right password through, every presented password is
// compared, so a guesser that ignores 429 is told right from wrong as fast as it can ask. The
// limiter slows clients that honour Retry-After; against one that does not, the length of
// the admin password is what protects it.
func (s *Server) admit(client string, c credentials) loginOutcome {
	switch c {
	case rightCredentials:
		return loginOutcome{}
	case noCredentials:
		return loginOutcome{status: http.StatusUnauthorized}
	}
	if wait, blocked := s.guard.blocked(client); blocked {
		return loginOutcome{status: http.StatusTooManyRequests, wait: wait}
	}
	s.guard.failed(client)
	return loginOutcome{status: http.StatusUnauthorized}
}

// requireAdmin guards plain handlers (River UI, /metrics): a bearer token, or HTTP Basic with
// the admin password (any user name) so a browser can log in.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	pw := newPassword(s.AdminPassword)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := s.admit(clientKey(r.RemoteAddr), pw.check(r.Header.Get("Authorization"), true))
		switch out.status {
		case 0:
			next.ServeHTTP(w, r)
		case http.StatusTooManyRequests:
			tooManyFailures(w, out.wait)
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="colindex admin", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}
	})
}
