package rocksindex

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// DiskUsage names every family and, after Compact, counts what the pairs cost: both pair
// families hold one key per pair.
func TestDiskUsageAfterCompact(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	dids := make([]string, 2000)
	for i := range dids {
		dids[i] = fmt.Sprintf("did:plc:%024d", i)
	}
	require.NoError(t, ix.Add("app.bsky.feed.post", dids))
	require.NoError(t, ix.Compact())
	byName := map[string]FamilySize{}
	for _, f := range ix.DiskUsage() {
		byName[f.Family] = f
	}
	require.Len(t, byName, len(familyNames))
	for _, fam := range []string{cfRBC, cfCBR} {
		require.Positive(t, byName[fam].Bytes, fam)
		require.InDelta(t, 2000, float64(byName[fam].Keys), 20, fam)
	}
	require.Zero(t, byName[cfGone].Keys)
}
