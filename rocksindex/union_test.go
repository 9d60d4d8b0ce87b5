package rocksindex

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unionFixture fills an index with 25 collections over a shared pool of DIDs (so unions
// overlap), a few disjoint ones, DIDs of several lengths (did:web ones sort among did:plc
// ones by bytes), and inactive accounts; it returns the listed DIDs of each collection.
func unionFixture(t *testing.T, ix *Index) (names []string, listed map[string]map[string]bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	pool := make([]string, 600)
	for i := range pool {
		if i%10 == 0 {
			pool[i] = fmt.Sprintf("did:web:h%d.example", i) // other lengths, other prefix
		} else {
			pool[i] = fmt.Sprintf("did:plc:%024d", rng.Uint64N(1<<40))
		}
	}
	raw := map[string][]string{}
	for c := range 25 {
		name := fmt.Sprintf("com.union.c%02d", c)
		names = append(names, name)
		var dids []string
		switch {
		case c >= 22: // disjoint: DIDs no other collection has
			for j := range 40 + 30*(c-22) {
				dids = append(dids, fmt.Sprintf("did:plc:only%02dx%016d", c, j))
			}
		default: // overlapping: a random share of the pool
			for _, d := range pool {
				if rng.IntN(25) <= c%7+1 {
					dids = append(dids, d)
				}
			}
		}
		require.NoError(t, ix.Add(name, dids))
		raw[name] = dids
	}
	// A prefix-sharing collection that must never leak into com.union.c01.
	require.NoError(t, ix.Add("com.union.c01x", pool[:50]))
	inactive := map[string]bool{}
	for i, d := range pool {
		if i%13 == 0 {
			require.NoError(t, ix.SetAccountStatus(d, []string{"takendown", "suspended", "deactivated"}[i%3]))
			inactive[d] = true
		}
	}
	require.NoError(t, ix.SetAccountStatus("did:plc:only23x0000000000000005", "takendown"))
	inactive["did:plc:only23x0000000000000005"] = true
	listed = map[string]map[string]bool{}
	for name, dids := range raw {
		listed[name] = map[string]bool{}
		for _, d := range dids {
			if !inactive[d] {
				listed[name][d] = true
			}
		}
	}
	return names, listed
}

// walkUnion pages a union to its end and checks every page: DID order within and across
// pages (so no duplicates), and the page size.
func walkUnion(t *testing.T, ix *Index, colls []string, limit int) []string {
	t.Helper()
	var all []string
	after := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100000)
		page, err := ix.ListReposUnion(colls, after, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), limit)
		for _, d := range page {
			if len(all) > 0 {
				require.Less(t, all[len(all)-1], d, "DID order, each DID once")
			}
			all = append(all, d)
		}
		if len(page) < limit {
			return all
		}
		after = page[len(page)-1]
	}
}

func TestListReposUnionIsTheUnionInDIDOrder(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	names, listed := unionFixture(t, ix)
	shapes := map[string][]string{
		"one":                   names[:1],
		"two overlapping":       names[3:5],
		"two disjoint":          names[22:24],
		"five mixed":            {names[0], names[7], names[22], names[24], names[13]},
		"twenty":                names[5:25],
		"with an unknown":       {names[2], "com.union.none"},
		"a collection repeated": {names[9], names[9], names[10]},
	}
	for shape, colls := range shapes {
		truth := map[string]bool{}
		for _, c := range colls {
			for d := range listed[c] {
				truth[d] = true
			}
		}
		want := slices.Sorted(func(yield func(string) bool) {
			for d := range truth {
				if !yield(d) {
					return
				}
			}
		})
		require.NotEmpty(t, want, shape)
		for _, limit := range []int{1, 7, 100, 1000} {
			t.Run(fmt.Sprintf("%s at limit %d", shape, limit), func(t *testing.T) {
				t.Parallel() // reads only
				require.Equal(t, want, walkUnion(t, ix, colls, limit))
			})
		}
	}
}

// One collection through the union is exactly ListRepos, cursor for cursor.
func TestListReposUnionOfOneIsListRepos(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	names, _ := unionFixture(t, ix)
	for _, after := range []string{"", "did:plc:0", "did:plc:000000000000500000000000", "did:web:h30.example", "did:zzz"} {
		t.Run("after "+after, func(t *testing.T) {
			t.Parallel() // reads only
			a, err := ix.ListRepos(names[4], after, 37)
			require.NoError(t, err)
			b, err := ix.ListReposUnion(names[4:5], after, 37)
			require.NoError(t, err)
			require.Equal(t, a, b)
		})
	}
}

func TestListReposUnionRefusesMoreThanTwenty(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	colls := make([]string, MaxUnion+1)
	for i := range colls {
		colls[i] = fmt.Sprintf("com.union.c%02d", i)
	}
	_, err := ix.ListReposUnion(colls, "", 10)
	require.Error(t, err)
	got, err := ix.ListReposUnion(colls[:MaxUnion], "", 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

// Long DIDs overflow the read buffer sized for did:plc: ones: the page continues in further
// calls and loses nothing.
func TestListReposWithLongDIDs(t *testing.T) {
	t.Parallel()
	ix := openTemp(t)
	var want []string
	for i := range 300 {
		host := fmt.Sprintf("h%03d.%s.example", i, strings.Repeat("x", i*6))
		want = append(want, "did:web:"+host)
	}
	want = append(want, "did:web:"+strings.Repeat("y", 1900)+".example")
	require.NoError(t, ix.Add("com.long.dids", want))
	require.NoError(t, ix.SetAccountStatus(want[7], "suspended"))
	listed := slices.Delete(slices.Clone(want), 7, 8)
	slices.Sort(listed)
	for _, limit := range []int{1, 7, 100, 1000} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			t.Parallel() // reads only
			require.Equal(t, listed, walkUnion(t, ix, []string{"com.long.dids"}, limit))
		})
	}
}
