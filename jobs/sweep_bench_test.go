package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// BenchmarkAccountSweep: a sweep, statuses only, of 20,000 accounts that the index holds a
// pair of each: the relay lists the active ones (7 in 10), and the sweep asks it about each
// of the others (a fifth of all deleted, a tenth taken down), with real Postgres and RocksDB:
// how many of the index's accounts a second it settles, with the relay on loopback and with
// each of its answers 5 ms away.
//
//	go test -run '^$' -bench AccountSweep -benchtime 3x ./jobs/
func BenchmarkAccountSweep(b *testing.B) {
	b.Run("loopback", func(b *testing.B) { benchAccountSweep(b, 0) })
	b.Run("relay 5 ms away", func(b *testing.B) { benchAccountSweep(b, 5*time.Millisecond) })
}

func benchAccountSweep(b *testing.B, latency time.Duration) {
	const n = 20_000
	ctx := context.Background()
	dids := testrelay.DIDs("bench", n)
	for range b.N {
		b.StopTimer()
		bd := setup(b, setupOpts{})
		bd.stream.ListReposDelay(latency)
		bd.stream.RepoStatusDelay(latency)
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
				bd.stream.HoldRepo(d, "2222222222222")
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
