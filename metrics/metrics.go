// Package metrics holds colindex's Prometheus metrics. New builds them on a registry of their
// own, which the API serves at /metrics; the packages that record them are handed the
// *Metrics (serve builds one and passes it to each), so a test builds its own and asserts
// exact values. What is computed at scrape time from Postgres (per-collection lag, River
// queue depth) is a collector in package jobs, registered on the same registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics is one process's metrics: the backfill's and the sources', the firehose
// consumer's and the verify jobs'. Each group's fields are promoted, so a recorder writes
// m.PagesCommitted, m.FirehoseEvents.
type Metrics struct {
	// Registry is what /metrics serves: these metrics plus Go runtime and process metrics.
	Registry *prometheus.Registry
	Backfill
	Firehose
	Verify
}

// New returns a fresh set of colindex's metrics on a registry of its own. Two sets never
// share a value, so two services (or two tests) in one process count apart.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	factory := promauto.With(reg)
	return &Metrics{
		Registry: reg,
		Backfill: newBackfill(factory),
		Firehose: newFirehose(factory),
		Verify:   newVerify(factory),
	}
}

// Latency buckets from 0.2 ms to 30 s, 28% apart: fine enough for the benchmark's p50/p99.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0002, 30, 48)

// Backfill is the page jobs' metrics (package jobs records them) and the sources' answers to
// them (package source).
type Backfill struct {
	PagesCommitted       prometheus.Counter
	PagesFailed          prometheus.Counter
	DIDsImported         prometheus.Counter
	DIDsSkipped          prometheus.Counter
	SourceResponses      *prometheus.CounterVec
	SourceThrottled      prometheus.Counter
	SourceRequestSeconds prometheus.Histogram
	PageSeconds          prometheus.Histogram
	PageOverheadSeconds  prometheus.Histogram
}

func newBackfill(factory promauto.Factory) Backfill {
	return Backfill{
		PagesCommitted: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_backfill_pages_committed_total",
			Help: "Pages whose DIDs reached the index and whose cursor advanced.",
		}),
		PagesFailed: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_backfill_pages_failed_total",
			Help: "Page attempts that failed (fetch, index write or commit) and will be retried or stopped.",
		}),
		DIDsImported: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_backfill_dids_imported_total",
			Help: "Valid DIDs in committed pages.",
		}),
		DIDsSkipped: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_backfill_dids_skipped_total",
			Help: "Entries in committed pages that were not valid DIDs (never indexed).",
		}),
		SourceResponses: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_source_responses_total",
			Help: "Responses from sources by XRPC method and HTTP status code: com.atproto.sync.listReposByCollection for the backfill's pages, a relay's com.atproto.sync.listRepos and com.atproto.sync.getRepoStatus for account sweeps (they share the host's rate cap); code=\"error\" when no response came; method=\"other\" for any other request.",
		}, []string{"method", "code"}),
		SourceThrottled: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_source_throttled_total",
			Help: "429 answers from sources (pages and account sweeps); requests to that host wait as it asks (not counted as failures).",
		}),
		SourceRequestSeconds: factory.NewHistogram(prometheus.HistogramOpts{
			Name:    "colindex_source_request_duration_seconds",
			Help:    "Time from sending a listReposByCollection request to having its whole body.",
			Buckets: latencyBuckets,
		}),
		PageSeconds: factory.NewHistogram(prometheus.HistogramOpts{
			Name:    "colindex_backfill_page_duration_seconds",
			Help:    "Time one page job takes, from start to commit.",
			Buckets: latencyBuckets,
		}),
		PageOverheadSeconds: factory.NewHistogram(prometheus.HistogramOpts{
			Name:    "colindex_backfill_page_overhead_seconds",
			Help:    "Time one committed page job spends on its own work: the job minus the pause, the rate-limit wait and the source round trip.",
			Buckets: latencyBuckets,
		}),
	}
}
