package firehose

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Bulk work yields while the stream is behind, but not for ever: past maxYield it goes on,
// and yields again once the stream has caught up and fallen behind anew.
func TestShouldYieldGivesUpAfterMaxYield(t *testing.T) {
	t.Parallel()
	f := &Firehose{}
	require.False(t, f.ShouldYield(), "not behind")
	f.st.backlog.Store(behindAt)
	require.True(t, f.ShouldYield(), "behind")
	f.behindSince.Store(time.Now().Add(-maxYield - time.Second).UnixNano())
	require.False(t, f.ShouldYield(), "behind for longer than maxYield: bulk work goes on")
	f.st.backlog.Store(0)
	require.False(t, f.ShouldYield(), "caught up")
	f.st.backlog.Store(behindAt)
	require.True(t, f.ShouldYield(), "behind again: yields again")
}
