package rocksindex

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// /metrics reports every column family's SST bytes and keys: the tombstones too, which grow
// with removals; after Close, nothing (no read of a closed database).
func TestDiskCollectorReportsEveryFamily(t *testing.T) {
	t.Parallel()
	ix, err := Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, ix.Add("a.b.c", []string{"did:plc:a", "did:plc:b", "did:plc:c"}))
	_, err = ix.RemovePairs([]Pair{{"a.b.c", "did:plc:a"}})
	require.NoError(t, err)
	require.NoError(t, ix.Compact())
	reg := prometheus.NewRegistry()
	reg.MustRegister(ix.DiskCollector())
	gathered := func() map[string]map[string]float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		out := map[string]map[string]float64{}
		for _, mf := range mfs {
			out[mf.GetName()] = map[string]float64{}
			for _, m := range mf.GetMetric() {
				out[mf.GetName()][m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	got := gathered()
	keys, bytes := got["colindex_index_keys_estimate"], got["colindex_index_sst_bytes"]
	require.Len(t, keys, len(familyNames), "every family")
	// RocksDB's key counts are estimates: present or not, not exact.
	require.Positive(t, keys["rbc"])
	require.Positive(t, keys["cbr"])
	require.Positive(t, keys["gone"], "the tombstone")
	require.Zero(t, keys["default"], "nothing is written there")
	require.Positive(t, bytes["rbc"])
	require.Positive(t, bytes["gone"])
	ix.Close()
	require.Empty(t, gathered())
}
