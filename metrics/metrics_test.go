package metrics

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Two sets count apart: what lets a test assert exact values while others run beside it.
func TestNewSetsCountApart(t *testing.T) {
	t.Parallel()
	a, b := New(), New()
	a.PagesCommitted.Inc()
	a.FirehoseRemovals.WithLabelValues("proof").Add(2)
	require.Equal(t, 1.0, Value(a.PagesCommitted))
	require.Zero(t, Value(b.PagesCommitted))
	require.Equal(t, map[string]int64{"proof": 2, "pds_check": 0, "account_deletion": 0, "sync": 0, "sweep": 0}, a.RemovalsByCause())
	require.Equal(t, map[string]int64{"proof": 0, "pds_check": 0, "account_deletion": 0, "sync": 0, "sweep": 0}, b.RemovalsByCause())
}

// Dashboards query these names: a rename fails here before it blinds one.
func TestRegistryServesEveryName(t *testing.T) {
	t.Parallel()
	m := New()
	// A vector is exposed once it has a child.
	m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "200")
	m.FirehoseEvents.WithLabelValues("commit")
	m.FirehoseBadEvents.WithLabelValues("nil_op")
	m.FirehoseRemovals.WithLabelValues("proof")
	m.FirehoseRemovalUndecided.WithLabelValues("no_blocks")
	m.VerifyJobs.WithLabelValues("verify_repo", "done")
	m.VerifyOutcomes.WithLabelValues("verify_repo", "kept")
	m.VerifyPDSResponses.WithLabelValues("200")
	families, err := m.Registry.Gather()
	require.NoError(t, err)
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	require.Subset(t, names, []string{
		"colindex_backfill_pages_committed_total",
		"colindex_backfill_pages_failed_total",
		"colindex_backfill_dids_imported_total",
		"colindex_backfill_dids_skipped_total",
		"colindex_source_responses_total",
		"colindex_source_throttled_total",
		"colindex_source_request_duration_seconds",
		"colindex_backfill_page_duration_seconds",
		"colindex_backfill_page_overhead_seconds",
		"colindex_firehose_events_total",
		"colindex_firehose_bad_events_total",
		"colindex_firehose_apply_failures_total",
		"colindex_firehose_lag_seconds",
		"colindex_firehose_cursor",
		"colindex_firehose_connected",
		"colindex_firehose_reconnects_total",
		"colindex_firehose_index_adds_total",
		"colindex_firehose_index_removals_total",
		"colindex_firehose_removal_undecided_total",
		"colindex_firehose_accounts_removed_total",
		"colindex_verify_jobs_total",
		"colindex_verify_outcomes_total",
		"colindex_verify_index_adds_total",
		"colindex_verify_pds_responses_total",
		"go_goroutines",
	})
}
