package rocksindex

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// RocksDB's memory comes from jemalloc (malloc.go), not glibc: writing 100,000 pairs (about
// 12 MB of keys, held in the memtables) raises jemalloc's count of allocated bytes by at least
// that much. Were librocksdb's malloc still glibc's, jemalloc would count none of it. Not
// parallel, so no other test's index frees memory meanwhile.
func TestRocksDBAllocatesThroughJemalloc(t *testing.T) {
	before := jemallocAllocated()
	require.GreaterOrEqual(t, before, int64(0), "jemalloc's statistics cannot be read")
	ix := openTemp(t)
	dids := make([]string, 10_000)
	for page := range 10 {
		for i := range dids {
			dids[i] = fmt.Sprintf("did:plc:%024d", page*len(dids)+i)
		}
		require.NoError(t, ix.Add("com.example.malloc", dids))
	}
	after := jemallocAllocated()
	t.Logf("jemalloc: %d MB allocated before, %d MB after", before>>20, after>>20)
	require.Greater(t, after-before, int64(8<<20),
		"jemalloc allocated %d bytes more after 100,000 pairs: RocksDB does not allocate through it", after-before)
}
