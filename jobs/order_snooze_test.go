package jobs

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// The largest collection's first page meets a rate-limit hold and is snoozed; when the hold
// ends it must start before the smaller collections queued behind it, not after all of them
// (issue 12: it started after 195). One worker, so the order is the queue's alone.
func TestSnoozedFirstPageKeepsItsPlace(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true, concurrency: 1})
	const large = "app.bsky.feed.like" // first by the known-large list
	names := []string{large}
	b.relay.Append(large, testrelay.DIDs("like", 20)...)
	for i := range 20 {
		n := fmt.Sprintf("com.example.s%02d", i)
		names = append(names, n)
		b.relay.Append(n, testrelay.DIDs(fmt.Sprintf("s%02d", i), 3)...)
	}
	b.relay.SetLLMsTxt(testrelay.LexiconList(names...))

	var mu sync.Mutex
	var served []string // collections of the pages served, in order
	limited := false
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, _ int64) bool {
		mu.Lock()
		defer mu.Unlock()
		c := r.URL.Query().Get("collection")
		if c == large && !limited {
			limited = true
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		served = append(served, c)
		if c != large {
			// Slow small pages: the twenty take seconds, far longer than the hold, so where
			// the large one lands says whether it kept its place, however loaded the machine.
			mu.Unlock()
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
		}
		return false
	})

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	require.Equal(t, len(names), st.Completed)
	b.requireIndexed(t, large, b.relay.Collection(large))

	mu.Lock()
	defer mu.Unlock()
	require.True(t, limited, "the large collection's first page was held")
	// While the hold lasts, the one worker takes the next small collection, which waits the
	// hold out inline; after that the snoozed large one comes first, give or take the pages
	// that start while River picks it up (a few, at 200 ms each, against a 1 s hold). Before
	// the fix it came back behind all 20.
	at := slices.Index(served, large)
	require.GreaterOrEqual(t, at, 0)
	require.LessOrEqual(t, at, 10, "served in order: %v", served)
}
