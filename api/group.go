package api

import (
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"
)

// adminSecurity is the security requirement of every admin operation.
var adminSecurity = []map[string][]string{{adminSecurityScheme: {}}}

// adminErrors are an admin operation's documented errors: its own, and the login check's.
// (Huma documents responses before a group's modifiers run, so they are listed here.)
func adminErrors(own ...int) []int {
	return append(slices.Clone(own), http.StatusUnauthorized, http.StatusTooManyRequests)
}

// adminGroup is where admin operations are registered: the group carries the login check
// and the security requirement for every operation in it, so an operation is protected by
// being registered here, whatever it declares itself.
func (s *Server) adminGroup(api huma.API) *huma.Group {
	g := huma.NewGroup(api)
	g.UseSimpleModifier(func(op *huma.Operation) { op.Security = adminSecurity })
	pw := newPassword(s.AdminPassword)
	g.UseMiddleware(func(ctx huma.Context, next func(huma.Context)) {
		// Admin operations take the bearer token only: Basic is for the browser paths.
		out := s.admit(clientKey(ctx.RemoteAddr()), pw.check(ctx.Header("Authorization"), false))
		switch out.status {
		case 0:
			next(ctx)
		case http.StatusTooManyRequests:
			ctx.SetHeader("Retry-After", retryAfterSeconds(out.wait))
			_ = huma.WriteErr(api, ctx, http.StatusTooManyRequests, "too many failed logins; try again later")
		default:
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="colindex admin"`)
			_ = huma.WriteErr(api, ctx, http.StatusUnauthorized, "missing or wrong admin bearer token")
		}
	})
	return g
}
