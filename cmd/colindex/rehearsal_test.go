package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/benchrelay"
	"github.com/colindex/colindex/internal/testrelay"
)

// The full-network rehearsal (make bench's -only rehearsal: 61M pairs), small enough for
// make test: the network's shape (1,300 collections, the largest about half of all pairs, a
// 1/rank tail) at 2M pairs, paged at limit 10000 with no latency and no cap through the
// binary. It checks what the rehearsal measures, without its timings: the backfill completes,
// every collection lists exactly the source's DIDs (compared as sets), the counts and the
// status answer for all 1,300 collections, and a restart serves the same index.
func TestRehearsalShapeAtTwoMillionPairs(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2M-pair backfill through the binary")
	}
	t.Parallel()
	data := benchrelay.NewDataset(benchrelay.Spec{Collections: 1300, Pairs: 2_000_000, LargestShare: 0.49, Prefix: "app.rehearsal"})
	src := benchrelay.New(data, benchrelay.Latency{})
	t.Cleanup(src.Close)
	unused := testrelay.New() // newService's defaults; the source and list below replace them
	t.Cleanup(unused.Close)
	svc := newService(t, unused, "COLINDEX_LEXICON_LIST_URL="+src.URL+"/llms.txt", "COLINDEX_DEFAULT_SOURCE="+src.URL,
		"COLINDEX_PAGE_LIMIT=10000", "COLINDEX_PAGE_PAUSE=0s")
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	st := svc.waitIdle(5 * time.Minute)
	require.Equal(t, 1300, st.Total)
	require.Equal(t, 1300, st.Completed)

	// every walks each collection when set, else the largest and every hundredth.
	check := func(when string, every bool) {
		// Every collection, as a set, and its count in status and in listCollections.
		code, body := svc.call(http.MethodGet, "/v1/listCollections?limit=1000")
		require.Equal(t, http.StatusOK, code)
		counts := map[string]int64{}
		for cursor := ""; ; {
			var page struct {
				Collections map[string]int64 `json:"collections"`
				Cursor      string           `json:"cursor"`
			}
			require.NoError(t, json.Unmarshal(body, &page))
			for c, n := range page.Collections {
				counts[c] = n
			}
			if page.Cursor == "" || page.Cursor == cursor {
				break
			}
			cursor = page.Cursor
			_, body = svc.call(http.MethodGet, "/v1/listCollections?limit=1000&cursor="+cursor)
		}
		require.Len(t, counts, 1300, "%s: listCollections pages all 1,300 collections", when)
		st, _ := svc.status()
		require.Len(t, st.Collections, 1300)
		pairs := 0
		for _, c := range st.Collections {
			i := slices.Index(data.Names, c.Collection)
			require.GreaterOrEqual(t, i, 0, c.Collection)
			require.EqualValues(t, data.Sizes[i], c.Indexed, "%s: %s indexed count", when, c.Collection)
			require.EqualValues(t, data.Sizes[i], counts[c.Collection], "%s: %s listCollections count", when, c.Collection)
			if !every && i%100 != 0 {
				continue
			}
			want := make([]string, data.Sizes[i])
			for j := range want {
				want[j] = data.DID(i, j)
			}
			slices.Sort(want)
			got := svc.listAllAt(c.Collection, 10000)
			require.Equal(t, want, got, "%s: %s lists exactly the source's DIDs", when, c.Collection)
			pairs += len(want)
		}
		if every {
			require.Equal(t, data.Pairs(), pairs)
		}
	}
	check("after the backfill", true)

	// A restart serves the same index: every count, and the largest and a sample of the tail
	// as sets.
	require.NoError(t, svc.stop(syscall.SIGTERM))
	svc.start()
	check("after a restart", false)
	t.Logf("%s pairs over %d collections (largest %d) compared as sets", fmt.Sprint(data.Pairs()), len(data.Names), data.Sizes[0])
}
