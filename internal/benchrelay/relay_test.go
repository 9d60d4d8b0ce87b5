package benchrelay

import (
	"context"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/source"
)

func TestDatasetIsNetworkShaped(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 1000, Pairs: 1_000_000, LargestShare: 0.3})
	require.Equal(t, 1_000_000, d.Pairs())
	require.Equal(t, 300_000, d.Sizes[0])
	single := 0
	for _, s := range d.Sizes {
		require.Positive(t, s)
		if s < 1000 {
			single++
		}
	}
	require.Greater(t, single, 800, "most collections fit in one page")
	// Collections share accounts.
	seen := map[uint64]bool{}
	for j := range d.Sizes[1] {
		seen[d.Account(1, j)] = true
	}
	shared := 0
	for j := range d.Sizes[0] {
		if seen[d.Account(0, j)] {
			shared++
		}
	}
	require.Positive(t, shared)
}

// Paging a collection through the real source client yields every DID once, valid, in the
// number of requests Requests predicts.
func TestRelayPagesLikeCollectiondir(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 5, Pairs: 3000, LargestShare: 0.5})
	r := New(d, Latency{})
	t.Cleanup(r.Close)
	src, err := source.Parse(r.URL)
	require.NoError(t, err)
	c := source.NewClient(0)
	for i, name := range d.Names {
		seen := map[string]bool{}
		cursor := ""
		for {
			p, err := c.ListRepos(context.Background(), src, name, cursor, 100)
			require.NoError(t, err)
			valid, skipped := jobs.ValidDIDs(p.DIDs)
			require.Zero(t, skipped)
			for _, did := range valid {
				require.False(t, seen[did], "DID repeated")
				seen[did] = true
			}
			if p.Cursor == "" {
				break
			}
			cursor = p.Cursor
		}
		require.Len(t, seen, d.Sizes[i], name)
	}
	require.Equal(t, d.Requests(100), r.Stats().Requests)
}

// Random DIDs are valid did:plc DIDs, one per account (the mix is a bijection on the
// account number), and spread over all 24 characters.
func TestRandomDIDsAreDistinctAndSpread(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	var firsts, lasts = map[byte]bool{}, map[byte]bool{}
	for account := range uint64(200_000) {
		did := string(AppendRandomDID(nil, account))
		_, err := syntax.ParseDID(did)
		require.NoError(t, err, did)
		require.Len(t, did, len("did:plc:")+24)
		require.False(t, seen[did], "account %d repeats %s", account, did)
		seen[did] = true
		firsts[did[8]] = true
		lasts[did[len(did)-1]] = true
	}
	require.Len(t, firsts, 32, "the first character takes every value")
	require.Len(t, lasts, 32, "the last character takes every value")
}
