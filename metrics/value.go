package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value is a counter's or gauge's current value, for the status endpoints that show an
// operator the figures Prometheus scrapes without a Prometheus.
func Value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		return 0
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	return 0
}

// RemovalCauses are the values of colindex_firehose_index_removals_total's cause label.
var RemovalCauses = []string{"proof", "pds_check", "account_deletion", "sync", "sweep"}

// RemovalsByCause is colindex_firehose_index_removals_total per cause, since m was built
// (for serve's one set: since the process started).
func (m *Metrics) RemovalsByCause() map[string]int64 {
	out := make(map[string]int64, len(RemovalCauses))
	for _, c := range RemovalCauses {
		out[c] = int64(Value(m.FirehoseRemovals.WithLabelValues(c)))
	}
	return out
}
