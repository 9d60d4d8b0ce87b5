package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/xrpc"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/source"
)

// list asks for a page and decodes it, strictly, into indigo's type for it.
func (s *stack) list(t *testing.T, query string) (int, comatproto.SyncListReposByCollection_Output, string) {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection?"+query)
	var out comatproto.SyncListReposByCollection_Output
	if code == http.StatusOK {
		decodeStrict(t, body, &out)
	}
	return code, out, body
}

func TestListReposPagesInDIDOrder(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	want := testrelay.DIDs("p", 25)
	shuffled := slices.Clone(want)
	slices.Reverse(shuffled)
	require.NoError(t, s.index.Add("com.example.p", shuffled))
	require.NoError(t, s.index.Add("com.example.twenty", testrelay.DIDs("t", 20)))

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		code, out, body := s.list(t, "collection=com.example.p&limit=10&cursor="+url.QueryEscape(cursor))
		require.Equal(t, http.StatusOK, code, body)
		for _, r := range out.Repos {
			got = append(got, r.Did)
		}
		if out.Cursor == nil {
			break
		}
		require.Equal(t, got[len(got)-1], *out.Cursor, "the cursor is the last DID returned")
		cursor = *out.Cursor
	}
	require.Equal(t, want, got)

	// An exact multiple of the limit: the second page is the last and carries no cursor.
	_, out, _ := s.list(t, "collection=com.example.twenty&limit=10")
	require.NotNil(t, out.Cursor)
	_, out, _ = s.list(t, "collection=com.example.twenty&limit=10&cursor="+url.QueryEscape(*out.Cursor))
	require.Len(t, out.Repos, 10)
	require.Nil(t, out.Cursor)

	// Unknown collection: an empty list, like the network's servers.
	code, out, body := s.list(t, "collection=com.example.none")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, out.Repos)
	require.Contains(t, body, `"repos":[]`)
}

func TestListReposLimitDefaultsAndClamps(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	require.NoError(t, s.index.Add("com.example.big", testrelay.DIDs("b", 10010)))
	for query, n := range map[string]int{
		"":                source.DefaultLimit,
		"&limit=0":        1,
		"&limit=-5":       1,
		"&limit=10001":    source.MaxLimit,
		"&limit=99999999": source.MaxLimit,
	} {
		t.Run("collection=com.example.big"+query, func(t *testing.T) {
			t.Parallel() // reads only
			code, out, body := s.list(t, "collection=com.example.big"+query)
			require.Equal(t, http.StatusOK, code, body)
			require.Len(t, out.Repos, n)
		})
	}
}

func TestListReposRejectsBadInputWith400(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, q := range []string{
		"", "collection=", "collection=notannsid", "collection=com.example.x!", "collection=" + strings.Repeat("a.", 300) + "b",
		"collection=com.example.x&limit=abc", "collection=com.example.x&limit=1e3", "collection=com.example.x&limit=99999999999999999999999",
		"collection=com.example.x&cursor=garbage", "collection=com.example.x&cursor=" + url.QueryEscape("did:plc:"+strings.Repeat("a", 5000)),
		"collection=com.example.x&cursor=%00",
	} {
		t.Run(truncateName(q), func(t *testing.T) {
			t.Parallel() // reads only
			code, _, body := s.list(t, q)
			require.Equal(t, http.StatusBadRequest, code, q)
			var e xrpc.XRPCError
			decodeStrict(t, body, &e)
			require.Equal(t, "InvalidRequest", e.ErrStr)
			require.NotEmpty(t, e.Message)
		})
	}
}

// truncateName keeps a subtest's name readable when its case is a long input.
func truncateName(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s…(%d bytes)", s[:80], len(s))
	}
	return s
}

// One colindex backfills from another through this endpoint: the proof that it behaves like
// the network's servers (full pages carry a cursor, the last page none, DID cursors).
func TestAnotherColindexCanBackfillFromThisOne(t *testing.T) {
	t.Parallel()
	upstream := newStack(t, stackOpts{})
	want := map[string][]string{
		"com.example.a": testrelay.DIDs("a", 23),
		"com.example.b": testrelay.DIDs("b", 7),
		"com.example.c": testrelay.DIDs("c", 1),
	}
	for c, d := range want {
		require.NoError(t, upstream.index.Add(c, d))
		upstream.setProgress(t, c, true, false) // a downstream only takes a finished collection
	}
	lexicons := testrelay.New()
	t.Cleanup(lexicons.Close)
	lexicons.SetLLMsTxt(testrelay.LexiconList(slices.Collect(maps.Keys(want))...))

	downstream := newStack(t, stackOpts{lexiconListURL: lexicons.URL + "/llms.txt", pageLimit: 5})
	code, body := downstream.do(t, http.MethodPost, "/admin/backfill-collections?source="+url.QueryEscape(upstream.http.URL), adminAuth)
	require.Equal(t, http.StatusOK, code, body)

	st := downstream.waitBackfillDone(t)
	require.Equal(t, 3, st.Completed)
	for c, d := range want {
		got, err := downstream.index.ListRepos(c, "", 100)
		require.NoError(t, err)
		require.Equal(t, d, got, c)
	}
	require.EqualValues(t, 31, st.TotalImported)
}

// Each bad query says what is wrong with it.
func TestListReposErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]string{
		"":                                   "collection is required",
		"collection=notannsid":               "collection must be an NSID",
		"collection=com.example.x&limit=abc": "limit must be an integer",
		"collection=com.example.x&limit=99999999999999999999999": "limit is out of range (1 to 10000)",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			_, err := parseListReposQuery(mustQuery(t, q))
			require.EqualError(t, err, want)
		})
	}
}

func mustQuery(t *testing.T, q string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(q)
	require.NoError(t, err)
	return v
}
