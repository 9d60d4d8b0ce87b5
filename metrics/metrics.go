// Package metrics holds colindex's Prometheus metrics, registered on one registry that the
// API serves at /metrics. Packages record into these; what is computed at scrape time from
// Postgres (per-collection lag, River queue depth) is a collector in package jobs.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Registry is what /metrics serves: colindex's metrics plus Go runtime and process metrics.
var Registry = prometheus.NewRegistry()

var factory = promauto.With(Registry)

func init() {
	Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Latency buckets from 0.2 ms to 30 s, 28% apart: fine enough for the benchmark's p50/p99.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0002, 30, 48)

var (
	PagesCommitted = factory.NewCounter(prometheus.CounterOpts{
		Name: "colindex_backfill_pages_committed_total",
		Help: "Pages whose DIDs reached the index and whose cursor advanced.",
	})
	PagesFailed = factory.NewCounter(prometheus.CounterOpts{
		Name: "colindex_backfill_pages_failed_total",
		Help: "Page attempts that failed (fetch, index write or commit) and will be retried or stopped.",
	})
	DIDsImported = factory.NewCounter(prometheus.CounterOpts{
		Name: "colindex_backfill_dids_imported_total",
		Help: "Valid DIDs in committed pages.",
	})
	DIDsSkipped = factory.NewCounter(prometheus.CounterOpts{
		Name: "colindex_backfill_dids_skipped_total",
		Help: "Entries in committed pages that were not valid DIDs (never indexed).",
	})
	SourceResponses = factory.NewCounterVec(prometheus.CounterOpts{
		Name: "colindex_source_responses_total",
		Help: "listReposByCollection responses from sources by HTTP status code; code=\"error\" when no response came.",
	}, []string{"code"})
	SourceThrottled = factory.NewCounter(prometheus.CounterOpts{
		Name: "colindex_source_throttled_total",
		Help: "429 answers from sources; paging of that source waits as the source asks (not counted as failures).",
	})
	SourceRequestSeconds = factory.NewHistogram(prometheus.HistogramOpts{
		Name:    "colindex_source_request_duration_seconds",
		Help:    "Time from sending a listReposByCollection request to having its whole body.",
		Buckets: latencyBuckets,
	})
	PageSeconds = factory.NewHistogram(prometheus.HistogramOpts{
		Name:    "colindex_backfill_page_duration_seconds",
		Help:    "Time one page job takes, from start to commit.",
		Buckets: latencyBuckets,
	})
	PageOverheadSeconds = factory.NewHistogram(prometheus.HistogramOpts{
		Name:    "colindex_backfill_page_overhead_seconds",
		Help:    "Time one committed page job spends on its own work: the job minus the pause, the rate-limit wait and the source round trip.",
		Buckets: latencyBuckets,
	})
)
