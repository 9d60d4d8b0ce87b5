package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
)

// The counts both routes serve equal what a reader walking listReposByCollection finds, as
// the index changes, and page through every collection exactly once.
func TestListCollectionsCountsWhatIsListed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	truth := map[string]int64{}
	for i := range 120 {
		coll := fmt.Sprintf("com.example.c%03d", i)
		n := 1 + i%9
		require.NoError(t, s.index.Add(coll, testrelay.DIDs(fmt.Sprintf("u%d", i%3), n)))
		truth[coll] = int64(n)
	}
	// An account hidden, a pair removed: both leave the counts, as they leave the listing.
	hidden := testrelay.DIDs("u0", 1)[0]
	require.NoError(t, s.index.SetAccountStatus(hidden, "takendown"))
	for i := 0; i < 120; i += 3 { // the u0 collections
		truth[fmt.Sprintf("com.example.c%03d", i)]--
	}
	removed := testrelay.DIDs("u1", 1)[0]
	n, err := s.index.RemovePairs([]rocksindex.Pair{{Collection: "com.example.c001", DID: removed}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	truth["com.example.c001"]--
	for coll, c := range truth {
		if c == 0 {
			delete(truth, coll)
		}
	}
	// The truth the public read path gives.
	t.Run("the public read path", func(t *testing.T) {
		for coll, c := range truth {
			t.Run(coll, func(t *testing.T) {
				t.Parallel() // reads only
				code, out, body := s.list(t, "limit=1000&collection="+coll)
				require.Equal(t, http.StatusOK, code, body)
				require.Len(t, out.Repos, int(c))
			})
		}
	})

	t.Run("v1 collectiondir shape", func(t *testing.T) {
		got := map[string]int64{}
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 5)
			code, body := s.do(t, http.MethodGet, "/v1/listCollections?limit=50&cursor="+url.QueryEscape(cursor))
			require.Equal(t, http.StatusOK, code, body)
			var out ListCollectionsV1
			require.NoError(t, json.Unmarshal([]byte(body), &out))
			for c, n := range out.Collections {
				_, dup := got[c]
				require.False(t, dup, "%s on two pages", c)
				got[c] = n
			}
			if out.Cursor == "" {
				break
			}
			cursor = out.Cursor
		}
		require.Equal(t, truth, got)

		code, body := s.do(t, http.MethodGet, "/v1/listCollections?c=com.example.c001&c=com.example.c003&c=no.such.thing")
		require.Equal(t, http.StatusOK, code, body)
		var out ListCollectionsV1
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		require.Equal(t, map[string]int64{"com.example.c001": truth["com.example.c001"], "com.example.c003": truth["com.example.c003"]}, out.Collections)
	})

	t.Run("ordered list with a cursor", func(t *testing.T) {
		got := map[string]int64{}
		prev, cursor := "", ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 20)
			code, body := s.do(t, http.MethodGet, "/v1/collections?limit=7&cursor="+url.QueryEscape(cursor))
			require.Equal(t, http.StatusOK, code, body)
			var out CollectionsPage
			require.NoError(t, json.Unmarshal([]byte(body), &out))
			for _, cc := range out.Collections {
				require.Greater(t, cc.Collection, prev, "NSID order")
				prev = cc.Collection
				got[cc.Collection] = cc.Count
			}
			if out.Cursor == "" {
				break
			}
			cursor = out.Cursor
		}
		require.Equal(t, truth, got)

		code, body := s.do(t, http.MethodGet, "/v1/collections?collection=com.example.c002&collection=no.such.thing")
		require.Equal(t, http.StatusOK, code, body)
		var out CollectionsPage
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		require.Equal(t, []CollectionCount{{"com.example.c002", truth["com.example.c002"]}, {"no.such.thing", 0}}, out.Collections)

		req, err := http.NewRequest(http.MethodGet, s.http.URL+"/v1/collections", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", "https://dashboard.example")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"), "browsers may read the counts")

		// A limit outside 1..1000 is clamped, as listReposByCollection clamps its own.
		code, body = s.do(t, http.MethodGet, "/v1/collections?limit=5000")
		require.Equal(t, http.StatusOK, code, body)
		out = CollectionsPage{}
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		require.Len(t, out.Collections, len(truth))
		require.Empty(t, out.Cursor)

		// Up to 100 distinct collections; the same one repeated counts once and is answered once.
		many := make([]string, 0, 101)
		for i := range 101 {
			many = append(many, "collection="+fmt.Sprintf("com.example.c%03d", i))
		}
		code, body = s.do(t, http.MethodGet, "/v1/collections?"+strings.Join(many, "&"))
		require.Equal(t, http.StatusBadRequest, code, body)
		requireXRPCError(t, body, "InvalidRequest")
		require.Contains(t, body, "at most 100 distinct collections")
		code, body = s.do(t, http.MethodGet, "/v1/collections?"+strings.Repeat("collection=com.example.c002&", 150))
		require.Equal(t, http.StatusOK, code, body)
		out = CollectionsPage{}
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		require.Equal(t, []CollectionCount{{"com.example.c002", truth["com.example.c002"]}}, out.Collections)
	})

	t.Run("collectiondir's c= has no cap, and an empty one asks for none", func(t *testing.T) {
		asked := make([]string, 0, 150)
		want := map[string]int64{}
		for i := range 150 { // 120 exist
			coll := fmt.Sprintf("com.example.c%03d", i)
			asked = append(asked, "c="+coll)
			if n, ok := truth[coll]; ok {
				want[coll] = n
			}
		}
		code, body := s.do(t, http.MethodGet, "/v1/listCollections?"+strings.Join(asked, "&"))
		require.Equal(t, http.StatusOK, code, body)
		var out ListCollectionsV1
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		require.Equal(t, want, out.Collections)

		code, body = s.do(t, http.MethodGet, "/v1/listCollections?c=")
		require.Equal(t, http.StatusOK, code, body)
		out = ListCollectionsV1{}
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		require.Empty(t, out.Collections)
		require.Empty(t, out.Cursor)
	})
}
