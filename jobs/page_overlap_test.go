package jobs

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// A page's statements run beside its index write (startIndexWrite); its commit must still
// wait for the write: at the moment a page commits, every DID of the pages up to it is in the
// index. The writes are slowed down so that the statements are done first; several chains
// at once, so pages also wait for their turn at the index gate.
func TestPageCommitsOnlyAfterItsDIDsAreIndexed(t *testing.T) {
	t.Parallel()
	const perColl = 40 // 6 pages of 7
	var mu sync.Mutex
	pages := map[string]int{}
	var b *bundle
	var problems []string
	slowWrite := func(string) { time.Sleep(100 * time.Millisecond) }
	b = setup(t, setupOpts{lexiconList: true, concurrency: 4, beforeIndexWrite: slowWrite, beforeCommit: func(_ context.Context, coll string) error {
		mu.Lock()
		pages[coll]++
		n := pages[coll]
		mu.Unlock()
		want := min(perColl, 7*n)
		got, err := b.index.ListRepos(coll, "", perColl+10)
		if err != nil {
			return err
		}
		if len(got) < want {
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s: page %d committing with %d DIDs indexed, want %d", coll, n, len(got), want))
			mu.Unlock()
		}
		return nil
	}})
	var names []string
	for i := range 4 {
		name := fmt.Sprintf("com.example.o%d", i)
		names = append(names, name)
		b.relay.Append(name, testrelay.DIDs(fmt.Sprintf("o%d", i), perColl)...)
	}
	b.relay.SetLLMsTxt(testrelay.LexiconList(names...))

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, problems)
	for _, name := range names {
		cs := statusOf(t, st, name)
		require.True(t, cs.Completed, name)
		require.EqualValues(t, perColl, cs.Imported, name)
		b.requireIndexed(t, name, b.relay.Collection(name))
	}
}
