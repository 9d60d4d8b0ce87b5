package api

import (
	"cmp"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/rocksindex"
)

// Version is reported in the OpenAPI document.
const Version = "0.1.0"

// Server holds what the handlers need.
type Server struct {
	Backfill      *jobs.Backfill
	Index         *rocksindex.Index
	Pool          *pgxpool.Pool
	AdminPassword string
	DefaultSource string
	Logger        *slog.Logger
	// RiverUI, when set, is served at /riverui/ behind the admin check.
	RiverUI http.Handler
	// Firehose is the stream follower; nil when the firehose is disabled.
	Firehose *firehose.Firehose
	// Metrics is what /metrics serves and /admin/firehose reads. Nil means the job
	// system's (Backfill.Metrics): serve builds one set and passes it to every part, so
	// either is the whole process's.
	Metrics *metrics.Metrics
	// ReplicaOf is the colindex this one copies (replica mode: /_health answers 503 until
	// ready); empty for a standalone colindex.
	ReplicaOf string

	// FailedLogins is each client's allowance of wrong passwords before its admin requests
	// are answered 429 (DefaultFailedLogins when 0).
	FailedLogins int

	guard       *loginGuard
	guardOnce   sync.Once
	metrics     *metrics.Metrics // metricSet's answer
	metricsOnce sync.Once
	complete    completeChecker // listReposByCollection's backfill-state lookups (xrpc.go)
}

func (s *Server) initGuard() {
	s.guardOnce.Do(func() { s.guard = newLoginGuard(cmp.Or(s.FailedLogins, DefaultFailedLogins)) })
}

// NewAPI registers the Huma operations on mux and returns the API (for its OpenAPI document).
func (s *Server) NewAPI(mux *http.ServeMux) huma.API {
	s.initGuard()
	cfg := huma.DefaultConfig("colindex", Version)
	// No "$schema" links injected into response bodies: the status JSON keeps zlay's shape.
	cfg.CreateHooks = nil
	cfg.Info.Description = "Builds and backfills an atproto collection index (collection → DIDs) and serves it " +
		"over com.atproto.sync.listReposByCollection."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		adminSecurityScheme: {
			Type:        "http",
			Scheme:      "bearer",
			Description: "RELAY_ADMIN_PASSWORD as a bearer token.",
		},
	}
	// The reference page is ours (docs.go): Huma's loads its renderer from a CDN.
	cfg.DocsPath = ""
	api := humago.New(mux, cfg)
	mux.HandleFunc("GET /docs", docs(api.OpenAPI()))
	describeCollections(api) // /v1/listCollections and /v1/collections, served by hand (collections.go)
	describePublic(api)      // listReposByCollection and /_health, served by hand (public_openapi.go)
	admin := s.adminGroup(api)
	s.registerAdmin(admin)
	s.registerControl(admin)
	s.registerMoveSource(admin)
	s.registerFirehose(admin)
	s.registerSweeps(admin)
	return api
}

// Handler is the whole HTTP surface.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.NewAPI(mux) // also sets up the login guard that requireAdmin uses
	// listReposByCollection and /_health, with CORS and caching (public.go).
	s.registerPublic(mux)
	if s.RiverUI != nil {
		// The login check runs first, so sameOriginWrites sees a bearer header only when its
		// token is right.
		mux.Handle("/riverui/", s.requireAdmin(sameOriginWrites(s.RiverUI)))
	}
	// Go's profiler, for an operator chasing CPU or memory (admin only).
	mux.Handle("GET /debug/pprof/", s.requireAdmin(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", s.requireAdmin(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/trace", s.requireAdmin(http.HandlerFunc(pprof.Trace)))
	// Prometheus scrapes with the admin bearer token (bearer_token in its scrape config).
	mux.Handle("GET /metrics", s.requireAdmin(promhttp.HandlerFor(s.metricSet().Registry, promhttp.HandlerOpts{})))
	return mux
}

// metricSet is Metrics, else the job system's; a server with neither (a reader-only test
// server) gets a private set that nothing records into.
func (s *Server) metricSet() *metrics.Metrics {
	s.metricsOnce.Do(func() {
		s.metrics = s.Metrics
		if s.metrics == nil && s.Backfill != nil {
			s.metrics = s.Backfill.Metrics
		}
		if s.metrics == nil {
			s.metrics = metrics.New()
		}
	})
	return s.metrics
}
