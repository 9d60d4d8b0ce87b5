package proof

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/stretchr/testify/require"
)

// requireSameAsIndigo checks car.go, node.go and encode.go against indigo on one commit:
// loadCommit must read the same commit and the same partial tree as LoadRepoFromCAR, and
// after the ops are inverted on both trees, rootCID must agree with indigo's RootCID.
// randomRepo calls it on every commit it makes.
func requireSameAsIndigo(t *testing.T, evt *comatproto.SyncSubscribeRepos_Commit) {
	t.Helper()
	ctx := context.Background()
	wantCommit, wantRepo, err := repo.LoadRepoFromCAR(ctx, bytes.NewReader(evt.Blocks))
	require.NoError(t, err)
	commit, tree, _, err := loadCommit(evt.Blocks)
	require.NoError(t, err)
	require.Equal(t, wantCommit, commit)
	require.Equal(t, &wantRepo.MST, tree, "the tree read from the CAR")

	ops, _, err := inversionOrder(evt.Ops)
	require.NoError(t, err)
	for _, op := range ops {
		require.NoError(t, repo.InvertOp(&wantRepo.MST, &op))
		require.NoError(t, repo.InvertOp(tree, &op))
	}
	want, err := wantRepo.MST.RootCID()
	require.NoError(t, err)
	got, err := rootCID(tree)
	require.NoError(t, err)
	require.Equal(t, want.String(), got.String(), "root of the inverted tree")
}

// TestRootCIDMatchesIndigo holds rootCID to indigo's RootCID on whole trees built from random
// keys (every node dirty), then on the same trees after random inserts and removals (a few
// nodes dirty among clean ones).
func TestRootCIDMatchesIndigo(t *testing.T) {
	t.Parallel()
	for seed := range 40 {
		rng := rand.New(rand.NewPCG(uint64(seed), 42))
		records := map[string]cid.Cid{}
		for range rng.IntN(1 + seed*seed) {
			records[fmt.Sprintf("%s/%d", pool[rng.IntN(len(pool))], rng.Int64())], _ = cborPrefix.Sum([]byte{byte(rng.IntN(256))})
		}
		tree, err := mst.LoadTreeFromMap(maps.Clone(records))
		require.NoError(t, err)
		theirs := tree.Copy()
		want, err := theirs.RootCID()
		require.NoError(t, err)
		got, err := rootCID(tree)
		require.NoError(t, err, "seed %d", seed)
		require.Equal(t, want.String(), got.String(), "seed %d, whole tree of %d keys", seed, len(records))

		for i := range 20 {
			theirs := tree.Copy()
			for range 1 + rng.IntN(4) {
				key := fmt.Sprintf("%s/%d", pool[rng.IntN(len(pool))], rng.Int64())
				if len(records) > 0 && rng.IntN(2) == 0 {
					for k := range records { // a random one
						key = k
						break
					}
					delete(records, key)
					_, err = tree.Remove([]byte(key))
					require.NoError(t, err)
					_, err = theirs.Remove([]byte(key))
				} else {
					records[key], _ = cborPrefix.Sum([]byte(key))
					_, err = tree.Insert([]byte(key), records[key])
					require.NoError(t, err)
					_, err = theirs.Insert([]byte(key), records[key])
				}
				require.NoError(t, err)
			}
			want, err := theirs.RootCID()
			require.NoError(t, err)
			got, err := rootCID(tree)
			require.NoError(t, err)
			require.Equal(t, want.String(), got.String(), "seed %d, edit %d", seed, i)
		}
	}
}

// carOf builds a CAR whose root is the first block.
func carOf(t *testing.T, blks ...[]byte) []byte {
	var out []blocks.Block
	for _, b := range blks {
		blk, err := blocks.NewBlockWithCid(b, mustCID(t, b))
		require.NoError(t, err)
		out = append(out, blk)
	}
	return writeCAR(t, out[0].Cid(), out)
}

// linkTo is the DAG-CBOR link to block b.
func linkTo(t *testing.T, b []byte) []byte {
	out, err := appendLink(nil, mustCID(t, b))
	require.NoError(t, err)
	return out
}

// TestLoadRefusesBadBlocks: each kind of bad input is an error that says what is wrong,
// never a panic or a tree that is not the blocks'.
func TestLoadRefusesBadBlocks(t *testing.T) {
	t.Parallel()
	// A leaf node holding "a/1" then an entry claiming 5 bytes of the 3-byte key before it.
	entry := func(k string, p byte) []byte {
		b := append([]byte{0xa4, 0x61, 'k'}, appendHead(nil, majBytes, uint64(len(k)))...)
		b = append(b, k...)
		b = append(b, 0x61, 'p', p, 0x61, 't', cborNull, 0x61, 'v')
		return append(b, linkTo(t, []byte{0xf6})...)
	}
	node := func(left []byte, entries ...[]byte) []byte {
		b := []byte{0xa2, 0x61, 'e', majArray<<5 | byte(len(entries))}
		for _, e := range entries {
			b = append(b, e...)
		}
		b = append(b, 0x61, 'l')
		if left == nil {
			return append(b, cborNull)
		}
		return append(b, left...)
	}
	good := node(nil, entry("a/1", 0))
	child := node(nil, entry("a/0", 0))

	tree, err := loadTree(map[cid.Cid][]byte{mustCID(t, good): good}, mustCID(t, good))
	require.NoError(t, err, "the well-formed node the cases below break")
	require.Equal(t, "a/1", string(tree.Root.Entries[0].Key))

	for name, tc := range map[string]struct {
		car  []byte
		want string
	}{
		"empty":              {nil, "malformed section length"},
		"truncated":          {carOf(t, good)[:20], "section of"},
		"hash mismatch":      {bytes.Replace(carOf(t, good), []byte("a/1"), []byte("a/2"), 1), "does not hash to its CID"},
		"prefix beyond key":  {carOf(t, node(nil, entry("a/1", 0), entry("b", 5))), "prefix of 5 bytes of a 3-byte key"},
		"not a node":         {carOf(t, []byte{0x01}), "CBOR major type 0 where 5 belongs"},
		"indefinite map":     {carOf(t, []byte{0xbf, 0xff}), "indefinite"},
		"trailing bytes":     {carOf(t, append(node(nil), 0)), "1 bytes after the CBOR item"},
		"keys out of order":  {carOf(t, bytes.Replace(good, []byte{0x61, 'e'}, []byte{0x61, 'x'}, 1)), `map key "x" where "e" belongs`},
		"link without 0x00":  {carOf(t, bytes.Replace(good, []byte{0x58, 37, 0}, []byte{0x58, 37, 1}, 1)), "0x00 prefix"},
		"child used twice":   {sharedChildCAR(t, child), "appears twice"},
		"too many entries":   {carOf(t, append([]byte{0xa2, 0x61, 'e', 0x9a, 0, 1, 0, 0}, make([]byte, 64)...)), "65536 entries"},
		"key too long":       {carOf(t, node(nil, entry(string(bytes.Repeat([]byte("a"), 1025)), 0))), "key of 1025 bytes"},
		"header version two": {bytes.Replace(carOf(t, good), []byte("version\x01"), []byte("version\x02"), 1), "unsupported CAR version 2"},
	} {
		t.Run(name, func(t *testing.T) {
			root, blocks, err := readCAR(tc.car)
			if err == nil {
				_, err = loadTree(blocks, root)
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// sharedChildCAR is a node whose left child and right child are the same block: a DAG, not
// an MST.
func sharedChildCAR(t *testing.T, child []byte) []byte {
	l := linkTo(t, child)
	b := []byte{0xa2, 0x61, 'e', majArray<<5 | 1, 0xa4, 0x61, 'k', 0x43, 'a', '/', '5', 0x61, 'p', 0, 0x61, 't'}
	b = append(b, l...)
	b = append(b, 0x61, 'v')
	b = append(b, linkTo(t, []byte{0xf6})...)
	b = append(b, 0x61, 'l')
	b = append(b, l...)
	return carOf(t, b, child)
}

// mustCID is block b's CID.
func mustCID(t *testing.T, b []byte) cid.Cid {
	c, err := cborPrefix.Sum(b)
	require.NoError(t, err)
	return c
}

// FuzzLoad feeds loadCommit arbitrary CARs, starting from real commits: it must not panic,
// and whatever it accepts, indigo's LoadRepoFromCAR must accept and read the same way.
//
//	go test -run='^$' -fuzz=FuzzLoad -fuzztime=1m ./firehose/proof/
func FuzzLoad(f *testing.F) {
	for _, evt := range benchCommits(f, 4) {
		f.Add([]byte(evt.Blocks))
	}
	f.Fuzz(func(t *testing.T, car []byte) {
		commit, tree, _, err := loadCommit(car)
		if err != nil {
			return
		}
		var wantCommit *repo.Commit
		var wantRepo *repo.Repo
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("indigo panicked: %v", p)
				}
			}()
			wantCommit, wantRepo, err = repo.LoadRepoFromCAR(context.Background(), bytes.NewReader(car))
		}()
		require.NoError(t, err, "loadCommit accepted a CAR indigo refuses")
		require.Equal(t, wantCommit, commit)
		require.Equal(t, &wantRepo.MST, tree)
	})
}
