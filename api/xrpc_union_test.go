package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// unionQuery is collection=…&collection=… for colls.
func unionQuery(colls []string) string {
	parts := make([]string, len(colls))
	for i, c := range colls {
		parts[i] = "collection=" + url.QueryEscape(c)
	}
	return strings.Join(parts, "&")
}

// walkList pages listReposByCollection to the end, checking DID order within and across
// pages (so no DID twice), that each full page's cursor is its last DID, and the page size.
func (s *stack) walkList(t *testing.T, colls []string, limit int) []string {
	t.Helper()
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10000)
		q := fmt.Sprintf("%s&limit=%d", unionQuery(colls), limit)
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		code, out, body := s.list(t, q)
		require.Equal(t, http.StatusOK, code, body)
		require.LessOrEqual(t, len(out.Repos), limit)
		for _, r := range out.Repos {
			if len(all) > 0 {
				require.Less(t, all[len(all)-1], r.Did, "DID order, each DID once")
			}
			all = append(all, r.Did)
		}
		if out.Cursor == nil {
			return all
		}
		require.Len(t, out.Repos, limit, "only a full page carries a cursor")
		require.Equal(t, all[len(all)-1], *out.Cursor, "the cursor is the last DID returned")
		cursor = *out.Cursor
	}
}

// The union of several collections, paged at several limits, is exactly the set of listed
// DIDs of those collections (inactive accounts left out), in DID order, each once.
func TestListReposUnionOverHTTP(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	shared := testrelay.DIDs("shared", 120)
	truth := map[string][]string{}
	var names []string
	for c := range 21 {
		name := fmt.Sprintf("com.example.u%02d", c)
		names = append(names, name)
		dids := testrelay.DIDs(name, 5+c*3) // disjoint from every other collection
		for j, d := range shared {
			if (j+c)%(c%4+2) == 0 { // overlapping: each takes its own share of the pool
				dids = append(dids, d)
			}
		}
		require.NoError(t, s.index.Add(name, dids))
		truth[name] = dids
	}
	inactive := map[string]bool{}
	for i, d := range shared {
		if i%9 == 0 {
			require.NoError(t, s.index.SetAccountStatus(d, "takendown"))
			inactive[d] = true
		}
	}
	one := truth[names[3]][0]
	require.NoError(t, s.index.SetAccountStatus(one, "deactivated"))
	inactive[one] = true

	for _, tc := range []struct {
		shape string
		colls []string
	}{
		{"1", names[:1]},
		{"2 disjoint", []string{names[1], names[2]}},
		{"2 same", []string{names[4], names[4]}},
		{"5", []string{names[3], names[6], names[9], names[12], names[15]}},
		{"20", names[:20]},
		{"20 reversed", reversed(names[1:21])},
	} {
		want := map[string]bool{}
		for _, c := range tc.colls {
			for _, d := range truth[c] {
				if !inactive[d] {
					want[d] = true
				}
			}
		}
		for _, limit := range []int{1, 7, 100, 1000} {
			t.Run(fmt.Sprintf("%s at limit %d", tc.shape, limit), func(t *testing.T) {
				t.Parallel() // reads only
				got := s.walkList(t, tc.colls, limit)
				require.Len(t, got, len(want))
				for _, d := range got {
					require.True(t, want[d], "%s is not in the union", d)
				}
			})
		}
	}

	t.Run("21 collections are a 400 in XRPC's shape", func(t *testing.T) {
		t.Parallel()
		code, _, body := s.list(t, unionQuery(names))
		require.Equal(t, http.StatusBadRequest, code, body)
		requireXRPCError(t, body, "InvalidRequest")
		require.Contains(t, body, "at most 20")
	})
	t.Run("the same collection repeated counts once", func(t *testing.T) {
		t.Parallel()
		many := make([]string, 30)
		for i := range many {
			many[i] = names[i%2]
		}
		code, out, body := s.list(t, unionQuery(many)+"&limit=10000")
		require.Equal(t, http.StatusOK, code, body)
		_, _, one := s.list(t, unionQuery(names[:2])+"&limit=10000")
		require.Equal(t, one, body, "30 mentions of two collections are their union")
		require.NotEmpty(t, out.Repos)
	})
	t.Run("one bad NSID among good ones spoils the request", func(t *testing.T) {
		t.Parallel()
		code, _, body := s.list(t, unionQuery([]string{names[0], "not an nsid"}))
		require.Equal(t, http.StatusBadRequest, code, body)
		requireXRPCError(t, body, "InvalidRequest")
	})
}

// A union is complete only when every collection in it is.
func TestListReposUnionIsCompleteOnlyWhenEveryCollectionIs(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, c := range []string{"com.example.done1", "com.example.done2", "com.example.filling"} {
		require.NoError(t, s.index.Add(c, testrelay.DIDs(c, 3)))
	}
	s.setProgress(t, "com.example.done1", true, false)
	s.setProgress(t, "com.example.done2", true, false)
	s.setProgress(t, "com.example.filling", false, false)
	for q, want := range map[string]string{
		"collection=com.example.done1&collection=com.example.done2":                                "complete",
		"collection=com.example.done1&collection=com.example.filling":                              "incomplete",
		"collection=com.example.filling&collection=com.example.done2":                              "incomplete",
		"collection=com.example.done1&collection=com.example.done2&collection=com.example.unknown": "none",
		"collection=com.example.filling&collection=com.example.unknown":                            "incomplete",
		"collection=com.example.done2":                                                             "complete",
	} {
		t.Run(q, func(t *testing.T) {
			t.Parallel() // reads only
			code, got := s.listHeader(t, q)
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, want, got)
		})
	}
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// The backfill state is remembered between pages (completeChecker), but every page still
// asks after its read: a reset that begins between two pages makes the next one incomplete.
func TestListReposNoticesAResetBetweenPages(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	for _, c := range []string{"com.example.r1", "com.example.r2"} {
		require.NoError(t, s.index.Add(c, testrelay.DIDs(c, 3)))
		s.setProgress(t, c, true, false)
	}
	one, both := "collection=com.example.r1", "collection=com.example.r1&collection=com.example.r2"
	for _, q := range []string{one, both, one} {
		_, got := s.listHeader(t, q)
		require.Equal(t, "complete", got, q)
	}
	// A reset begins (through the job system, which moves the completion epoch): pages say
	// incomplete at once, though complete was remembered; the other collection stays complete.
	_, err := s.srv.Backfill.Reset(context.Background(), "com.example.r1")
	require.NoError(t, err)
	for _, q := range []string{one, both} {
		_, got := s.listHeader(t, q)
		require.Equal(t, "incomplete", got, q)
	}
	_, got := s.listHeader(t, "collection=com.example.r2")
	require.Equal(t, "complete", got)
}
