package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// BenchmarkAccountSweep: a sweep, statuses only, of a relay listing 20,000 accounts that the
// index holds a pair of each (a fifth deleted, a tenth taken down, the rest active), on
// loopback with real Postgres and RocksDB: how many accounts a second it reads and applies.
//
//	go test -run '^$' -bench AccountSweep -benchtime 3x ./jobs/
func BenchmarkAccountSweep(b *testing.B) {
	const n = 20_000
	ctx := context.Background()
	dids := testrelay.DIDs("bench", n)
	for range b.N {
		b.StopTimer()
		bd := setup(b, setupOpts{})
		pairs := make([]rocksindex.Pair, n)
		for i, d := range dids {
			pairs[i] = rocksindex.Pair{Collection: "app.bsky.feed.post", DID: d}
			var err error
			switch {
			case i%5 == 0:
				_, err = bd.stream.AccountStatus(d, false, "deleted")
			case i%10 == 1:
				_, err = bd.stream.AccountStatus(d, false, "takendown")
			default:
				_, err = bd.stream.AccountStatus(d, true, "")
			}
			require.NoError(b, err)
		}
		_, err := bd.index.AddPairs(pairs)
		require.NoError(b, err)
		b.StartTimer()
		start := time.Now()
		sw, err := bd.backfill.StartSweep(ctx, bd.stream.URL(), nil)
		require.NoError(b, err)
		for {
			got, err := queries.SweepGet(ctx, bd.pool, sw.ID)
			require.NoError(b, err)
			if got.FinishedAt != nil {
				require.Equal(b, int64(n/5), got.AccountsRemoved)
				require.Equal(b, int64(n/5+n/10), got.StatusesChanged)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(n/time.Since(start).Seconds(), "accounts/s")
	}
}
