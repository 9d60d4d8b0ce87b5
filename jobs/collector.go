package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// Collector exports, at scrape time, what lives in Postgres: how long each incomplete
// collection has gone without progress, and River's queue depth.
type Collector struct {
	Pool   *pgxpool.Pool
	River  *river.Client[pgx.Tx]
	Logger *slog.Logger
}

var (
	lagDesc = prometheus.NewDesc("colindex_backfill_collection_lag_seconds",
		"Seconds since an incomplete collection last committed a page (or was discovered, before its first page).",
		[]string{"collection"}, nil)
	queueDesc = prometheus.NewDesc("colindex_river_queue_jobs",
		"River jobs by queue and state (available: waiting for a worker; running).",
		[]string{"queue", "state"}, nil)
)

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- queueDesc
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lags, err := queries.ProgressListLag(ctx, c.Pool)
	if err != nil {
		c.Logger.WarnContext(ctx, "metrics: collection lag", "error", err)
	}
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, l.SecondsSinceProgress, l.Collection)
	}
	counts, err := queueCounts(ctx, c.River, QueuePages, QueueRuns, QueueMaintenance, QueueVerify)
	if err != nil {
		c.Logger.WarnContext(ctx, "metrics: queue depth", "error", err)
	}
	for _, q := range counts {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(q.CountAvailable), q.Queue, "available")
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(q.CountRunning), q.Queue, "running")
	}
}
