package jobs

import (
	"fmt"
	"testing"
)

// BenchmarkValidDIDs measures DID validation for one page of 1,000 network-shaped DIDs.
func BenchmarkValidDIDs(b *testing.B) {
	page := make([]string, 1000)
	for i := range page {
		page[i] = fmt.Sprintf("did:plc:%024d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		valid, _ := ValidDIDs(page)
		if len(valid) != len(page) {
			b.Fatal("invalid")
		}
	}
}
