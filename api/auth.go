package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
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

// requireAdmin guards plain handlers (River UI, /metrics): a bearer token, or HTTP Basic with
// the admin password (any user name) so a browser can log in.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	pw := newPassword(s.AdminPassword)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientKey(r.RemoteAddr)
		if wait, blocked := s.guard.blocked(client); blocked {
			tooManyFailures(w, wait)
			return
		}
		if token, ok := bearerToken(r.Header.Get("Authorization")); ok && pw.matches(token) {
			next.ServeHTTP(w, r)
			return
		}
		if _, pass, ok := r.BasicAuth(); ok && pw.matches(pass) {
			next.ServeHTTP(w, r)
			return
		}
		s.guard.failed(client)
		w.Header().Set("WWW-Authenticate", `Basic realm="colindex admin", charset="UTF-8"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}
