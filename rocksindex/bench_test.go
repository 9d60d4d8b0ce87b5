package rocksindex

import (
	"fmt"
	"testing"
)

// BenchmarkAdd1000 writes one page of 1,000 DIDs (2,000 keys, one synced batch).
func BenchmarkAdd1000(b *testing.B) {
	ix, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	n := 0
	page := make([]string, 1000)
	for b.Loop() {
		for i := range page {
			page[i] = fmt.Sprintf("did:plc:%024d", n)
			n++
		}
		if err := ix.Add("app.bsky.feed.post", page); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "DIDs/s")
}
