package jobs

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// A page that gives way to the live stream (ErrYield from BeforeFetch) is handed back and
// runs again later: no attempt spent, no error recorded, and the backfill still ends exact.
func TestYieldingPagesComeBackWithoutSpendingAttempts(t *testing.T) {
	t.Parallel()
	var yields atomic.Int64
	b := setup(t, setupOpts{
		pageLimit:   5,
		lexiconList: true,
		maxAttempts: 2, // fewer than the yields: a yield that spent an attempt would end the chain
		beforeFetch: func(context.Context) error {
			if yields.Add(1) <= 6 {
				return ErrYield
			}
			return nil
		},
	})
	want := testrelay.DIDs("y", 12)
	b.relay.Append("com.example.yield", want...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.yield"))
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, time.Minute)
	require.Equal(t, 1, st.Completed, "%+v", st)
	require.Empty(t, st.Collections[0].Error, "a yield is not a failure")
	require.Greater(t, yields.Load(), int64(6), "every yield came back")
	b.requireIndexed(t, "com.example.yield", want)
}
