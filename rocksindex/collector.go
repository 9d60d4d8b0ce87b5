package rocksindex

import "github.com/prometheus/client_golang/prometheus"

// What the index holds, per column family, for /metrics: its SST bytes and RocksDB's estimate
// of its live keys, read from RocksDB's properties at scrape time. Operators watch the pair
// families grow with the network, and the tombstones (gone), which keep every removed pair
// from being put back by a source that never removes anything and so grow with removals.

var (
	familyBytesDesc = prometheus.NewDesc("colindex_index_sst_bytes",
		"SST file bytes of one column family of the index (memtables not counted).", []string{"family"}, nil)
	familyKeysDesc = prometheus.NewDesc("colindex_index_keys_estimate",
		"RocksDB's estimate of the live keys of one column family of the index.", []string{"family"}, nil)
)

type diskCollector struct{ ix *Index }

// DiskCollector returns a Prometheus collector of DiskUsage. After Close it reports nothing.
func (ix *Index) DiskCollector() prometheus.Collector { return diskCollector{ix} }

func (c diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- familyBytesDesc
	ch <- familyKeysDesc
}

func (c diskCollector) Collect(ch chan<- prometheus.Metric) {
	if c.ix.closed.Load() {
		return
	}
	for _, f := range c.ix.DiskUsage() {
		ch <- prometheus.MustNewConstMetric(familyBytesDesc, prometheus.GaugeValue, float64(f.Bytes), f.Family)
		ch <- prometheus.MustNewConstMetric(familyKeysDesc, prometheus.GaugeValue, float64(f.Keys), f.Family)
	}
}
