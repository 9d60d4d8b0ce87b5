package jobs

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// A source that keeps failing stops the collection with its error once the retry budget is
// spent; a later start resumes it from the saved cursor, refetching nothing committed.
func TestRetryBudgetStopsTheCollectionAndAStartResumesIt(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true, maxAttempts: 2})
	b.relay.Append("com.example.down", testrelay.DIDs("d", 20)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.down"))
	var broken atomic.Bool
	broken.Store(true)
	var firstPages atomic.Int32
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if r.URL.Query().Get("cursor") == "" {
			firstPages.Add(1)
			return false
		}
		if !broken.Load() {
			return false
		}
		if n%2 == 0 { // alternate a 503 and a connection reset
			http.Error(w, `{"error":"Unavailable","message":"try later"}`, http.StatusServiceUnavailable)
			return true
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return true
	})

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	cs := statusOf(t, st, "com.example.down")
	require.False(t, cs.Completed)
	require.NotEmpty(t, cs.Error, "the last failure is in the status")
	require.NotEmpty(t, cs.Cursor)
	require.EqualValues(t, 7, cs.Imported, "the first page was committed")

	broken.Store(false)
	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	require.Equal(t, 1, res.Collections)
	st = b.waitDone(t, 60*time.Second)
	cs = statusOf(t, st, "com.example.down")
	require.True(t, cs.Completed)
	require.EqualValues(t, 20, cs.Imported)
	require.Empty(t, cs.Error)
	require.EqualValues(t, 1, firstPages.Load(), "resumed from the cursor, not from the start")
	b.requireIndexed(t, "com.example.down", b.relay.Collection("com.example.down"))
}

// A source that hands back an earlier cursor (a loop longer than one page) is caught.
func TestCursorLoopStopsTheCollection(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.loop", testrelay.DIDs("l", 50)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.loop"))
	var mu sync.Mutex
	var cursors []string
	var requests atomic.Int32
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		requests.Add(1)
		c := r.URL.Query().Get("cursor")
		mu.Lock()
		defer mu.Unlock()
		if c != "" {
			cursors = append(cursors, c)
		}
		if len(cursors) == 3 {
			// The third cursored request answers with the first cursor ever handed out.
			writeFullPage(w, cursors[0])
			return true
		}
		return false
	})
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 30*time.Second)
	cs := statusOf(t, st, "com.example.loop")
	require.False(t, cs.Completed)
	require.Contains(t, cs.Error, ErrCursorRepeated.Error())
	require.EqualValues(t, 4, requests.Load(), "stopped at the looping page, not after")
	require.EqualValues(t, 21, cs.Imported, "three honest pages; nothing from the looping one")
}

// A page the source garbles is an error for that page: nothing from it reaches the index
// or the count, and the collection carries the error.
func TestGarbledPageWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true, maxAttempts: 1})
	b.relay.Append("com.example.garbled", testrelay.DIDs("g", 20)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.garbled"))
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if r.URL.Query().Get("cursor") == "" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"repos":[{"did":"did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"},{"did":"did:pl`))
		return true
	})
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 30*time.Second)
	cs := statusOf(t, st, "com.example.garbled")
	require.False(t, cs.Completed)
	require.Contains(t, cs.Error, "malformed page")
	require.EqualValues(t, 7, cs.Imported)
	b.requireIndexed(t, "com.example.garbled", b.relay.Collection("com.example.garbled")[:7])
}

// A lexicon list over the size cap is refused; discovery goes on from the index.
func TestHugeLexiconListIsRefusedAndDiscoveryGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.SetLLMsTxt(strings.Repeat("[x](https://lexicon.garden/lexicon/did:plc:x/com.example.x)\n", maxLexiconListBytes/50))
	require.NoError(t, b.index.Add("com.example.known", testrelay.DIDs("k", 1)))
	b.relay.Append("com.example.known", testrelay.DIDs("k", 3)...)
	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	require.Contains(t, res.LexiconListError, "larger than")
	require.Equal(t, 1, res.Discovered)
	st := b.waitDone(t, 30*time.Second)
	require.EqualValues(t, 3, statusOf(t, st, "com.example.known").Imported)
}
