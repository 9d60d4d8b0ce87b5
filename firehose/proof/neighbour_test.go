package proof

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-datastore"
	blockstore "github.com/ipfs/go-ipfs-blockstore"
	"github.com/stretchr/testify/require"
)

// truth returns the neighbours of key among sorted keys (nil where there is none).
func truth(sorted []string, key string) (prev, next []byte) {
	i, found := slices.BinarySearch(sorted, key)
	if i > 0 {
		prev = []byte(sorted[i-1])
	}
	if found {
		i++
	}
	if i < len(sorted) {
		next = []byte(sorted[i])
	}
	return prev, next
}

func TestNeighbours(t *testing.T) {
	t.Parallel()
	r := newTestRepo(t, deepCounts())
	sorted := slices.Sorted(func(yield func(string) bool) {
		for p := range r.records {
			if !yield(p) {
				return
			}
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	// Probes: every key, keys between keys, and the ends.
	probes := []string{"a", "zzz", "com.example.c05/", "com.example.c050"}
	for range 500 {
		k := sorted[rng.IntN(len(sorted))]
		probes = append(probes, k, k+"0", k[:len(k)-1])
	}

	t.Run("full tree", func(t *testing.T) {
		t.Parallel()
		for _, p := range probes {
			wantPrev, wantNext := truth(sorted, p)
			prev, err := before(r.tree.Root, []byte(p))
			require.NoError(t, err)
			require.Equal(t, string(wantPrev), string(prev), "before %q", p)
			next, err := after(r.tree.Root, []byte(p))
			require.NoError(t, err)
			require.Equal(t, string(wantNext), string(next), "after %q", p)
		}
	})

	t.Run("partial tree of a delete's diff", func(t *testing.T) {
		t.Parallel()
		// A copy of the tree loses one key; its diff blocks are all a #commit would carry.
		tree := r.tree.Copy()
		gone := sorted[len(sorted)/2]
		_, err := repo.ApplyOp(&tree, gone, nil)
		require.NoError(t, err)
		bs := blockstore.NewBlockstore(datastore.NewMapDatastore())
		root, err := tree.WriteDiffBlocks(context.Background(), bs)
		require.NoError(t, err)
		diff, err := mst.LoadTreeFromStore(context.Background(), bs, *root)
		require.NoError(t, err)
		require.True(t, diff.IsPartial())
		after1 := slices.DeleteFunc(slices.Clone(sorted), func(s string) bool { return s == gone })

		// The deleted key's own neighbours are in the diff.
		wantPrev, wantNext := truth(after1, gone)
		prev, err := before(diff.Root, []byte(gone))
		require.NoError(t, err)
		require.Equal(t, string(wantPrev), string(prev))
		next, err := after(diff.Root, []byte(gone))
		require.NoError(t, err)
		require.Equal(t, string(wantNext), string(next))

		// Elsewhere the answer is right or a partial-tree error, never a wrong key or a
		// false "none" from a subtree that is not there.
		var partial int
		for _, p := range probes {
			if p == gone {
				continue
			}
			wantPrev, wantNext := truth(after1, p)
			for _, c := range []struct {
				f    func(*mst.Node, []byte) ([]byte, error)
				want []byte
			}{{before, wantPrev}, {after, wantNext}} {
				got, err := c.f(diff.Root, []byte(p))
				if err != nil {
					require.True(t, errors.Is(err, mst.ErrPartialTree), "probe %q: %v", p, err)
					partial++
					continue
				}
				require.Equal(t, string(c.want), string(got), "probe %q", p)
			}
		}
		require.NotZero(t, partial, "probes far from the deleted key should reach missing subtrees")

		// decideCollection, as if each probe key had been deleted: right or Unknown.
		goneColl, _ := collectionOf(gone)
		var unknown, settledByOther int
		for _, p := range probes {
			coll, rkey := collectionOf(p)
			if rkey == "" || p == gone {
				continue
			}
			v := decideCollection(diff.Root, coll, []string{p})
			if v.Outcome == Unknown {
				require.Equal(t, ReasonPartial, v.Reason)
				require.ErrorIs(t, v.Err, mst.ErrPartialTree)
				unknown++
				// Another deleted path of the collection, with its neighbours in the
				// blocks, settles it.
				if coll == goneColl {
					require.NotEqual(t, Unknown, decideCollection(diff.Root, coll, []string{p, gone}).Outcome)
					settledByOther++
				}
				continue
			}
			kept := slices.ContainsFunc(after1, func(k string) bool { return k != p && strings.HasPrefix(k, coll+"/") })
			require.Equal(t, kept, v.Outcome == Kept, "probe %q: %+v", p, v)
		}
		require.NotZero(t, unknown)
		require.NotZero(t, settledByOther)
	})
}
