package source

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/colindex/colindex/internal/await"
)

// Waiting requests get tokens highest priority first, oldest first among equals.
func TestTokenQueueServesByPriority(t *testing.T) {
	t.Parallel()
	// Slow: all five queue before the first token, even on a loaded machine, and each served
	// waiter records itself long before the next token. At 1 s a CI run under -race, beside the
	// e2e services, once recorded a 0 before a 5: the served goroutine ran more than a second
	// after its token.
	l := rate.NewLimiter(rate.Every(2*time.Second), 1)
	require.True(t, l.Allow()) // the bucket is empty: everyone below waits
	q := newTokenQueue(l)

	var mu sync.Mutex
	var order []int64
	var wg sync.WaitGroup
	for _, p := range []int64{0, 5, 0, 300, 5} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, q.wait(context.Background(), p, time.Minute))
			mu.Lock()
			order = append(order, p)
			mu.Unlock()
		}()
	}
	// The empty bucket holds dispatch for 2 s (200 ms was seen too short beside a compile on
	// 2 cores): all five queue long before the first token.
	// (A wait that took longer would let a token out early, and the order check fail.)
	await.Until(t, 10*time.Second, "five waiters queued", func() (bool, any) {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.waiters.Len() == 5, q.waiters.Len()
	})
	wg.Wait()
	require.Equal(t, []int64{300, 5, 5, 0, 0}, order)
}

func TestTokenQueueWaiterCanGiveUp(t *testing.T) {
	t.Parallel()
	l := rate.NewLimiter(rate.Every(time.Hour), 1)
	require.True(t, l.Allow())
	q := newTokenQueue(l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, q.wait(ctx, 1, time.Minute), context.Canceled)
}

func TestTokenQueueStepsAsideAfterMaxWait(t *testing.T) {
	t.Parallel()
	l := rate.NewLimiter(rate.Every(time.Hour), 1)
	require.True(t, l.Allow())
	q := newTokenQueue(l)
	require.ErrorIs(t, q.wait(context.Background(), 1, 20*time.Millisecond), errQueueTimeout)
}
