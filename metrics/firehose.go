package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Firehose is the firehose consumer's metrics (package firehose records them).
type Firehose struct {
	FirehoseEvents           *prometheus.CounterVec
	FirehoseBadEvents        *prometheus.CounterVec
	FirehoseFailures         prometheus.Counter
	FirehoseLagSeconds       prometheus.Gauge
	FirehoseCursor           prometheus.Gauge
	FirehoseConnected        prometheus.Gauge
	FirehoseReconnects       prometheus.Counter
	FirehoseIndexAdds        prometheus.Counter
	FirehoseRemovals         *prometheus.CounterVec
	FirehoseRemovalUndecided *prometheus.CounterVec
	FirehoseAccountsRemoved  prometheus.Counter
	FirehoseGaps             prometheus.Counter
}

func newFirehose(factory promauto.Factory) Firehose {
	return Firehose{
		FirehoseEvents: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_firehose_events_total",
			Help: "Events taken from the relay's firehose by type (commit, sync, identity, account, info, error), each once: a batch that failed and is received again counts when it is applied.",
		}, []string{"type"}),
		FirehoseBadEvents: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_firehose_bad_events_total",
			Help: "Events or ops skipped as malformed, by reason (invalid_did, invalid_path, invalid_action, nil_op), and events whose seq was not above the previous one (seq_out_of_order: applied, but the relay is at fault).",
		}, []string{"reason"}),
		FirehoseFailures: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_firehose_apply_failures_total",
			Help: "Events that could not be applied (an index error); the stream is replayed from the durable cursor.",
		}),
		FirehoseLagSeconds: factory.NewGauge(prometheus.GaugeOpts{
			Name: "colindex_firehose_lag_seconds",
			Help: "Age of the newest applied event when it was applied (now minus its time field).",
		}),
		FirehoseCursor: factory.NewGauge(prometheus.GaugeOpts{
			Name: "colindex_firehose_cursor",
			Help: "The durable cursor: every event at or below this seq is applied and synced in the index.",
		}),
		FirehoseConnected: factory.NewGauge(prometheus.GaugeOpts{
			Name: "colindex_firehose_connected",
			Help: "1 while this process holds the firehose lock and a relay connection is open.",
		}),
		FirehoseReconnects: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_firehose_reconnects_total",
			Help: "Relay connections that ended or failed to open and were retried.",
		}),
		FirehoseIndexAdds: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_firehose_index_adds_total",
			Help: "(collection, DID) pairs the firehose added that the index did not hold.",
		}),
		FirehoseRemovals: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_firehose_index_removals_total",
			Help: "(collection, DID) pairs removed, by cause: account_deletion (#account deleted), proof (the account's last record of the collection deleted, decided from the commit's MST blocks), pds_check (a PDS answered that no record is left, or that the repo is gone), sync (a #sync or a sweep re-learned the account's collections from its PDS), sweep (a sweep of the relay's account list found the account deleted).",
		}, []string{"cause"}),
		FirehoseRemovalUndecided: factory.NewCounterVec(prometheus.CounterOpts{
			Name: "colindex_firehose_removal_undecided_total",
			Help: "Collections a commit deleted records from whose proof could not say whether any record is left (the pair is kept), by reason.",
		}, []string{"reason"}),
		FirehoseAccountsRemoved: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_firehose_accounts_removed_total",
			Help: "Accounts deleted (#account status=deleted) and removed from the index.",
		}),
		FirehoseGaps: factory.NewCounter(prometheus.CounterOpts{
			Name: "colindex_firehose_gaps_total",
			Help: "Gaps in the stream recorded by this process: events never applied because the relay answered #info OutdatedCursor or FutureCursor, or an operator moved the cursor past them (GET /admin/firehose lists them with their repair).",
		}),
	}
}
