package api

import (
	"net/http"
)

// sameOriginWrites guards River UI against cross-site request forgery. River UI is logged
// into with HTTP Basic, which a browser caches and attaches to every request to this host,
// including a hostile page's form POST; and River UI's API decodes a JSON body whatever its
// Content-Type, so a text/plain form can carry one. A request that changes state (any method
// but GET, HEAD and OPTIONS) is therefore served only when
//
//   - it carries an "Authorization: Bearer" header: a browser never attaches one on its own,
//     and a cross-site page can only set it after a CORS preflight that River UI never
//     grants. (requireAdmin, which wraps this, has already checked that the token is right:
//     a wrong bearer header is refused there, since it is not Basic either); or
//   - it proves it comes from this origin: net/http's CrossOriginProtection refuses a
//     Sec-Fetch-Site other than same-origin/none, and an Origin whose host is not the
//     request's Host; on top of that the request must carry one of those two headers at all,
//     so a client that sends neither (an old browser, a script using Basic) is refused
//     instead of being assumed harmless.
//
// A Content-Type requirement (application/json) would not help: River UI's own page sends
// its cancel, delete and retry bodies without setting a Content-Type (the browser labels them
// text/plain, exactly like the hostile form) and its pause/resume PUTs have no body at all.
// Requiring JSON would break those buttons without refusing anything the origin check lets in.
func sameOriginWrites(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := bearerToken(r.Header.Get("Authorization")); ok {
			next.ServeHTTP(w, r)
			return
		}
		if err := cop.Check(r); err != nil {
			http.Error(w, "cross-origin request refused: River UI changes state only for requests "+
				"from its own page or with an Authorization: Bearer header ("+err.Error()+")", http.StatusForbidden)
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "" && r.Header.Get("Origin") == "" {
			http.Error(w, "request refused: a River UI change must come from River UI's own page "+
				"(Origin or Sec-Fetch-Site header) or carry an Authorization: Bearer header", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
