package proof

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	blockstore "github.com/ipfs/go-ipfs-blockstore"
	"github.com/ipld/go-car"
	carutil "github.com/ipld/go-car/util"
	"github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"
)

// testRepo is an account's repository that emits real sync-1.1 #commit messages, built the
// way a PDS builds them with indigo's atproto/repo: ops applied to the full MST with ApplyOp,
// the nodes they dirtied (the inversion proof) written with WriteDiffBlocks, the commit
// signed with a generated key, all in a CAR whose root is the commit. records is the truth
// the proofs are checked against.
//
// internal/fakerelay.Account does the same for the stream tests; this one can start from a
// bulk-loaded tree (a 2,000-record repo without 2,000 creates in its first commit) and
// exposes its keys, which the randomized test needs.
type testRepo struct {
	t       testing.TB
	did     string
	key     atcrypto.PrivateKey
	tree    mst.Tree
	ticks   int64 // of the TID clock, which is deterministic so failures reproduce
	rev     string
	n       int
	records map[string]cid.Cid
}

var cborPrefix = cid.NewPrefixV1(cid.DagCBOR, multihash.SHA2_256)

// newTestRepo returns a repository that already holds counts[coll] records of each
// collection, as left by earlier commits.
func newTestRepo(t testing.TB, counts map[string]int) *testRepo {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	require.NoError(t, err)
	r := &testRepo{t: t, did: "did:plc:prooftest", key: key, records: map[string]cid.Cid{}}
	// Sorted, so that the same counts give the same keys: failures reproduce.
	for _, coll := range slices.Sorted(maps.Keys(counts)) {
		for range counts[coll] {
			p := r.path(coll)
			r.records[p], _ = r.record(p)
		}
	}
	tree, err := mst.LoadTreeFromMap(maps.Clone(r.records))
	require.NoError(t, err)
	r.tree = *tree
	// Computing the root marks every node clean, so the first commit's diff holds only what
	// its own ops touch, as on a PDS.
	_, err = r.tree.RootCID()
	require.NoError(t, err)
	return r
}

// in returns the paths of coll in the repository, sorted.
func (r *testRepo) in(coll string) []string {
	var out []string
	for p := range r.records {
		if strings.HasPrefix(p, coll+"/") {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// tid returns the next TID: 2026-01-01 plus a microsecond per call.
func (r *testRepo) tid() string {
	r.ticks++
	return syntax.NewTID(1767225600_000000+r.ticks, 1).String()
}

// path returns a fresh path in coll, with a TID record key as clients make them.
func (r *testRepo) path(coll string) string { return coll + "/" + r.tid() }

// record returns the CID and bytes of a new record at path.
func (r *testRepo) record(path string) (cid.Cid, []byte) {
	r.n++
	coll, _, _ := strings.Cut(path, "/")
	b, err := atdata.MarshalCBOR(map[string]any{"$type": coll, "n": int64(r.n)})
	require.NoError(r.t, err)
	c, err := cborPrefix.Sum(b)
	require.NoError(r.t, err)
	return c, b
}

type testOp struct{ action, path string }

func create(path string) testOp { return testOp{"create", path} }
func update(path string) testOp { return testOp{"update", path} }
func del(path string) testOp    { return testOp{"delete", path} }

// commit applies ops and returns the #commit message a relay would carry.
func (r *testRepo) commit(ops ...testOp) *comatproto.SyncSubscribeRepos_Commit {
	t := r.t
	t.Helper()
	ctx := context.Background()
	prevData, err := r.tree.RootCID()
	require.NoError(t, err)
	bs := &collector{Blockstore: blockstore.NewBlockstore(datastore.NewMapDatastore())}
	var repoOps []*comatproto.SyncSubscribeRepos_RepoOp
	for _, op := range ops {
		rop := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.action, Path: op.path}
		var val *cid.Cid
		if op.action != "delete" {
			c, b := r.record(op.path)
			blk, err := blocks.NewBlockWithCid(b, c)
			require.NoError(t, err)
			require.NoError(t, bs.Put(ctx, blk))
			val = &c
			rop.Cid = (*lexutil.LexLink)(&c)
			r.records[op.path] = c
		} else {
			delete(r.records, op.path)
		}
		applied, err := repo.ApplyOp(&r.tree, op.path, val)
		require.NoError(t, err)
		if r.tree.IsEmpty() {
			// indigo's Remove leaves an emptied root at its old height, and a later Insert
			// builds under it a tree that is not canonical (a root of one child pointer),
			// which no PDS would sign. Start over from the canonical empty tree; the empty
			// root's CID is the same either way.
			r.tree = mst.NewEmptyTree()
		}
		require.Equal(t, op.action == "create", applied.Prev == nil, "op %s %s against the repo", op.action, op.path)
		rop.Prev = (*lexutil.LexLink)(applied.Prev)
		repoOps = append(repoOps, rop)
	}
	root, err := r.tree.WriteDiffBlocks(ctx, bs)
	require.NoError(t, err)
	commit := repo.Commit{DID: r.did, Version: repo.ATPROTO_REPO_VERSION, Data: *root, Rev: r.tid()}
	require.NoError(t, commit.Sign(r.key))
	var buf bytes.Buffer
	require.NoError(t, commit.MarshalCBOR(&buf))
	commitCID, err := cborPrefix.Sum(buf.Bytes())
	require.NoError(t, err)
	blk, err := blocks.NewBlockWithCid(buf.Bytes(), commitCID)
	require.NoError(t, err)
	require.NoError(t, bs.Put(ctx, blk))

	evt := &comatproto.SyncSubscribeRepos_Commit{
		Repo:     r.did,
		Rev:      commit.Rev,
		Commit:   lexutil.LexLink(commitCID),
		Ops:      repoOps,
		Blocks:   writeCAR(t, commitCID, bs.blocks),
		PrevData: (*lexutil.LexLink)(prevData),
		Blobs:    []lexutil.LexLink{},
		Time:     syntax.DatetimeNow().String(),
	}
	if r.rev != "" {
		since := r.rev
		evt.Since = &since
	}
	r.rev = commit.Rev
	return evt
}

// has reports whether the repository (the truth, not the proof) has a record in coll.
func (r *testRepo) has(coll string) bool {
	for p := range r.records {
		if strings.HasPrefix(p, coll+"/") {
			return true
		}
	}
	return false
}

// collector keeps the blocks written to it with their own CIDs, in order (a blockstore lists
// its keys by multihash, losing the codec).
type collector struct {
	blockstore.Blockstore
	blocks []blocks.Block
}

func (c *collector) Put(ctx context.Context, b blocks.Block) error {
	c.blocks = append(c.blocks, b)
	return c.Blockstore.Put(ctx, b)
}

func writeCAR(t testing.TB, root cid.Cid, blks []blocks.Block) []byte {
	var buf bytes.Buffer
	require.NoError(t, car.WriteHeader(&car.CarHeader{Roots: []cid.Cid{root}, Version: 1}, &buf))
	for _, b := range blks {
		require.NoError(t, carutil.LdWrite(&buf, b.Cid().Bytes(), b.RawData()))
	}
	return buf.Bytes()
}

// readCARWithGoCar returns the root and blocks of a CAR, read by go-car.
func readCARWithGoCar(t testing.TB, b []byte) (cid.Cid, []blocks.Block) {
	cr, err := car.NewCarReader(bytes.NewReader(b))
	require.NoError(t, err)
	var out []blocks.Block
	for {
		blk, err := cr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		out = append(out, blk)
	}
	return cr.Header.Roots[0], out
}

// collections returns the collections with records in the repository, sorted.
func (r *testRepo) collections() []string {
	set := map[string]bool{}
	for p := range r.records {
		coll, _ := collectionOf(p)
		set[coll] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func collectionOf(path string) (coll, rkey string) {
	coll, rkey, _ = strings.Cut(path, "/")
	return coll, rkey
}
