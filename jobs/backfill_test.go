package jobs

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/metrics"
)

func TestBackfillPagesEveryCollectionExactly(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	sizes := map[string]int{
		"app.bsky.feed.post":     60, // many pages
		"app.bsky.feed.like":     14, // exactly two full pages: the last call is an empty page
		"app.bsky.actor.profile": 7,  // exactly one full page
		"com.example.small":      3,
		"com.example.one":        1,
		"com.example.empty":      0, // listed but the source has nothing
	}
	var nsids []string
	for c, n := range sizes {
		nsids = append(nsids, c)
		if n > 0 {
			// Shared DIDs across collections, like the network.
			b.relay.Append(c, testrelay.DIDs("", n)...)
		}
	}
	b.relay.SetLLMsTxt(testrelay.LexiconList(nsids...))

	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	require.Equal(t, len(sizes), res.Collections)
	require.Equal(t, len(sizes), res.Added)
	require.Empty(t, res.LexiconListError)

	st := b.waitDone(t, 30*time.Second)
	require.Equal(t, len(sizes), st.Total)
	require.Equal(t, len(sizes), st.Completed)
	require.Zero(t, st.InProgress)
	var total int64
	for c, n := range sizes {
		cs := statusOf(t, st, c)
		require.True(t, cs.Completed, c)
		require.EqualValues(t, n, cs.Imported, c)
		require.Empty(t, cs.Error, c)
		require.Empty(t, cs.Cursor, "completed collections show no cursor")
		require.Equal(t, b.src.Name, cs.Source)
		b.requireIndexed(t, c, b.relay.Collection(c))
		total += int64(n)
	}
	require.Equal(t, total, st.TotalImported)
	require.NotNil(t, st.LastRun)
	require.NotNil(t, st.LastRun.FinishedAt)

	// cbr mirrors rbc.
	colls, err := b.index.CollectionsOf(testrelay.DIDs("", 1)[0])
	require.NoError(t, err)
	require.Len(t, colls, 5)
}

func TestStartRefusesWhileARunIsLive(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{pagePause: 30 * time.Millisecond})
	b.relay.Append("com.example.slow", testrelay.DIDs("slow", 70)...)
	require.NoError(t, b.index.Add("com.example.slow", testrelay.DIDs("slow", 1))) // discovered from the index

	const callers = 12
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.backfill.Start(context.Background(), b.src)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrRunning):
				refused.Add(1)
			default:
				t.Errorf("start: %v", err)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, ok.Load())
	require.EqualValues(t, callers-1, refused.Load())

	st := b.waitDone(t, 30*time.Second)
	require.EqualValues(t, 70, statusOf(t, st, "com.example.slow").Imported)

	// After the run, a start is accepted and re-imports nothing.
	before := b.relay.Requests()
	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	require.Zero(t, res.Collections)
	require.Equal(t, 1, res.AlreadyComplete)
	st = b.waitDone(t, 30*time.Second)
	require.EqualValues(t, 70, st.TotalImported)
	require.Equal(t, before, b.relay.Requests())
}

func TestRerunSkipsCompletedAndAddsNew(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.a", testrelay.DIDs("a", 10)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.a"))
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	b.waitDone(t, 30*time.Second)

	// The source grows, and a new lexicon is published.
	b.relay.Append("com.example.a", testrelay.DIDs("late", 5)...)
	b.relay.Append("com.example.b", testrelay.DIDs("b", 9)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.a", "com.example.b"))

	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	require.Equal(t, 1, res.Collections)
	require.Equal(t, 1, res.Added)
	require.Equal(t, 1, res.AlreadyComplete)
	st := b.waitDone(t, 30*time.Second)
	require.EqualValues(t, 10, statusOf(t, st, "com.example.a").Imported, "completed collection was skipped")
	require.EqualValues(t, 9, statusOf(t, st, "com.example.b").Imported)
	b.requireIndexed(t, "com.example.b", b.relay.Collection("com.example.b"))
	require.Equal(t, 2, st.Completed)
}

func TestDiscoveryFromIndexAloneWhenLexiconListFails(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.backfill.Discoverer.LexiconListURL = b.relay.URL + "/no-such-list"
	require.NoError(t, b.index.Add("com.example.seen", testrelay.DIDs("x", 1)))
	require.NoError(t, b.index.Add("com.example.seen2", testrelay.DIDs("y", 1)))
	b.relay.Append("com.example.seen", testrelay.DIDs("s", 20)...)

	res, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	require.Equal(t, 2, res.Discovered)
	require.Contains(t, res.LexiconListError, "HTTP 404")

	st := b.waitDone(t, 30*time.Second)
	require.Contains(t, st.LastRun.LexiconListError, "HTTP 404", "the failure is visible in the status")
	require.EqualValues(t, 20, statusOf(t, st, "com.example.seen").Imported)
	require.True(t, statusOf(t, st, "com.example.seen2").Completed)
}

func TestInvalidDIDsAreSkippedAndCounted(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	good := testrelay.DIDs("g", 9)
	huge := "did:plc:" + strings.Repeat("a", 3000)
	bad := []string{"", "not-a-did", "did:PLC:abcdefghijklmnopqrstuvwx", huge, "did:plc:has space"}
	var mixed []string
	for i, d := range good {
		mixed = append(mixed, d)
		if i < len(bad) {
			mixed = append(mixed, bad[i])
		}
	}
	b.relay.Append("com.example.mixed", mixed...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.mixed"))

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 30*time.Second)
	cs := statusOf(t, st, "com.example.mixed")
	require.True(t, cs.Completed)
	require.EqualValues(t, len(good), cs.Imported)
	require.EqualValues(t, len(bad), cs.Skipped)
	b.requireIndexed(t, "com.example.mixed", good)
	require.EqualValues(t, len(good), metrics.Value(b.backfill.Metrics.DIDsImported))
	require.EqualValues(t, len(bad), metrics.Value(b.backfill.Metrics.DIDsSkipped))
}

func TestFailedFetchIsRetriedWithoutDoubleCounting(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.flaky", testrelay.DIDs("f", 30)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.flaky"))
	var failed atomic.Bool
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		// The third page request fails once with a 502.
		if n == 3 && failed.CompareAndSwap(false, true) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return true
		}
		return false
	})

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	require.True(t, failed.Load())
	cs := statusOf(t, st, "com.example.flaky")
	require.True(t, cs.Completed)
	require.EqualValues(t, 30, cs.Imported)
	require.Empty(t, cs.Error, "a committed page clears the last error")
	b.requireIndexed(t, "com.example.flaky", b.relay.Collection("com.example.flaky"))
	// 30 DIDs at 7 a page: 5 pages answered, and the one 502 before its retry.
	m := b.backfill.Metrics
	require.Equal(t, 5.0, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "200")))
	require.Equal(t, 1.0, metrics.Value(m.SourceResponses.WithLabelValues("com.atproto.sync.listReposByCollection", "502")))
	require.Equal(t, 1.0, metrics.Value(m.PagesFailed))
}

func TestUncommittedPageIsFetchedAgainAndCountedOnce(t *testing.T) {
	t.Parallel()
	var pages, failures atomic.Int32
	b := setup(t, setupOpts{lexiconList: true, beforeCommit: func(_ context.Context, coll string) error {
		// The second page's transaction fails after its DIDs reached the index.
		if pages.Add(1) == 2 {
			failures.Add(1)
			return errors.New("injected: crash before commit")
		}
		return nil
	}})
	b.relay.Append("com.example.c", testrelay.DIDs("c", 25)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.c"))

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	require.EqualValues(t, 1, failures.Load())
	cs := statusOf(t, st, "com.example.c")
	require.True(t, cs.Completed)
	require.EqualValues(t, 25, cs.Imported, "the re-fetched page is counted once")
	// 25 DIDs at 7 a page: 4 pages, the last one short, plus the one fetched again.
	require.EqualValues(t, 4, cs.Pages)
	require.EqualValues(t, 5, b.relay.Requests())
	// The metrics agree: the page fetched again failed once and was committed once.
	m := b.backfill.Metrics
	require.Equal(t, 4.0, metrics.Value(m.PagesCommitted))
	require.Equal(t, 25.0, metrics.Value(m.DIDsImported))
	require.Equal(t, 1.0, metrics.Value(m.PagesFailed))
}

func TestStuckCursorStopsTheCollection(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.stuck", testrelay.DIDs("s", 20)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.stuck"))
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if c := r.URL.Query().Get("cursor"); c != "" {
			// A source that lies: a full page that hands back the cursor it was given.
			writeFullPage(w, c)
			return true
		}
		return false
	})

	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 30*time.Second)
	cs := statusOf(t, st, "com.example.stuck")
	require.False(t, cs.Completed)
	require.Contains(t, cs.Error, ErrCursorRepeated.Error())
	require.EqualValues(t, 7, cs.Imported, "only the honest first page counts")
	require.NotEmpty(t, cs.Cursor)
}

func TestTooManyRequestsWaitsWithoutFailing(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{lexiconList: true})
	b.relay.Append("com.example.busy", testrelay.DIDs("b", 20)...)
	b.relay.SetLLMsTxt(testrelay.LexiconList("com.example.busy"))
	var throttled atomic.Int32
	b.relay.Intercept(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if n == 2 {
			throttled.Add(1)
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	_, err := b.backfill.Start(context.Background(), b.src)
	require.NoError(t, err)
	st := b.waitDone(t, 60*time.Second)
	cs := statusOf(t, st, "com.example.busy")
	require.True(t, cs.Completed)
	require.EqualValues(t, 20, cs.Imported)
	require.Empty(t, cs.Error, "a 429 is not a failure")
	require.EqualValues(t, 1, throttled.Load())

	rows, err := b.backfill.River.JobList(context.Background(), river.NewJobListParams().Kinds(PageKind).States(rivertype.JobStateCompleted))
	require.NoError(t, err)
	for _, j := range rows.Jobs {
		require.Empty(t, j.Errors, "no attempt was spent on the 429")
	}
}
