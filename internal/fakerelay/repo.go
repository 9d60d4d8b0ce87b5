package fakerelay

import (
	"bytes"
	"context"
	"fmt"

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
)

var cborPrefix = cid.NewPrefixV1(cid.DagCBOR, multihash.SHA2_256)

// Op is one record operation of a commit.
type Op struct {
	Action     string // create, update or delete
	Collection string
	Rkey       string
}

// Create, Update and Delete build ops.
func Create(collection, rkey string) Op { return Op{"create", collection, rkey} }
func Update(collection, rkey string) Op { return Op{"update", collection, rkey} }
func Delete(collection, rkey string) Op { return Op{"delete", collection, rkey} }

// Account is a repository that produces real sync-1.1 commits: a signing key, an MST of its
// records, and a TID clock. Each commit carries the signed commit block, the new records and
// the MST nodes its ops touched, enough for a consumer to invert the ops onto prevData.
type Account struct {
	DID   string
	key   atcrypto.PrivateKey
	tree  mst.Tree
	clock *syntax.TIDClock
	rev   string
	n     int
}

// NewAccount returns an empty repository for did.
func NewAccount(did string) (*Account, error) {
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		return nil, fmt.Errorf("new key for %s: %w", did, err)
	}
	return &Account{DID: did, key: key, tree: mst.NewEmptyTree(), clock: syntax.NewTIDClock(0)}, nil
}

// PublicKey is the key the account's commits verify against.
func (a *Account) PublicKey() (atcrypto.PublicKey, error) { return a.key.PublicKey() }

// Commit applies ops to the repository and returns the #commit event (Seq unset). A create
// of an existing path is sent as an update, as a PDS would.
func (a *Account) Commit(ops ...Op) (*comatproto.SyncSubscribeRepos_Commit, error) {
	ctx := context.Background()
	prevData, err := a.tree.RootCID()
	if err != nil {
		return nil, fmt.Errorf("root of %s: %w", a.DID, err)
	}
	bs := &collector{Blockstore: blockstore.NewBlockstore(datastore.NewMapDatastore())}
	var repoOps []*comatproto.SyncSubscribeRepos_RepoOp
	for _, op := range ops {
		path := op.Collection + "/" + op.Rkey
		rop := &comatproto.SyncSubscribeRepos_RepoOp{Action: op.Action, Path: path}
		if op.Action == "delete" {
			applied, err := repo.ApplyOp(&a.tree, path, nil)
			if err != nil {
				return nil, fmt.Errorf("delete %s of %s: %w", path, a.DID, err)
			}
			if applied.Prev == nil {
				return nil, fmt.Errorf("delete %s of %s: no such record", path, a.DID)
			}
			if a.tree.IsEmpty() {
				// indigo's Remove leaves an emptied root at its old height, and a later
				// Insert builds a tree no PDS would sign: start over from the canonical empty
				// tree (its root CID is the same).
				a.tree = mst.NewEmptyTree()
			}
			rop.Prev = (*lexutil.LexLink)(applied.Prev)
		} else {
			a.n++
			rec, err := atdata.MarshalCBOR(map[string]any{"$type": op.Collection, "n": int64(a.n)})
			if err != nil {
				return nil, err
			}
			c, err := putBlock(ctx, bs, rec)
			if err != nil {
				return nil, err
			}
			applied, err := repo.ApplyOp(&a.tree, path, &c)
			if err != nil {
				return nil, fmt.Errorf("%s %s of %s: %w", op.Action, path, a.DID, err)
			}
			rop.Action = "create"
			if applied.Prev != nil {
				rop.Action = "update"
				rop.Prev = (*lexutil.LexLink)(applied.Prev)
			}
			rop.Cid = (*lexutil.LexLink)(&c)
		}
		repoOps = append(repoOps, rop)
	}
	root, err := a.tree.WriteDiffBlocks(ctx, bs)
	if err != nil {
		return nil, fmt.Errorf("MST blocks of %s: %w", a.DID, err)
	}
	commit := repo.Commit{DID: a.DID, Version: repo.ATPROTO_REPO_VERSION, Data: *root, Rev: a.clock.Next().String()}
	if err := commit.Sign(a.key); err != nil {
		return nil, fmt.Errorf("sign commit of %s: %w", a.DID, err)
	}
	var buf bytes.Buffer
	if err := commit.MarshalCBOR(&buf); err != nil {
		return nil, err
	}
	commitCID, err := putBlock(ctx, bs, buf.Bytes())
	if err != nil {
		return nil, err
	}
	carBytes, err := writeCAR(ctx, bs, commitCID)
	if err != nil {
		return nil, fmt.Errorf("CAR of %s: %w", a.DID, err)
	}
	evt := &comatproto.SyncSubscribeRepos_Commit{
		Repo:     a.DID,
		Rev:      commit.Rev,
		Commit:   lexutil.LexLink(commitCID),
		Ops:      repoOps,
		Blocks:   carBytes,
		PrevData: (*lexutil.LexLink)(prevData),
		Blobs:    []lexutil.LexLink{},
		Time:     syntax.DatetimeNow().String(),
	}
	if a.rev != "" {
		since := a.rev
		evt.Since = &since
	}
	a.rev = commit.Rev
	return evt, nil
}

// collector is the blockstore MST writes go to; it keeps the blocks, with their own CIDs, in
// the order they were written (a blockstore lists its keys by multihash, losing the codec).
type collector struct {
	blockstore.Blockstore
	blocks []blocks.Block
}

func (c *collector) Put(ctx context.Context, b blocks.Block) error {
	c.blocks = append(c.blocks, b)
	return c.Blockstore.Put(ctx, b)
}

func putBlock(ctx context.Context, bs *collector, data []byte) (cid.Cid, error) {
	c, err := cborPrefix.Sum(data)
	if err != nil {
		return cid.Undef, err
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return cid.Undef, err
	}
	return c, bs.Put(ctx, blk)
}

// writeCAR writes every block of bs as a CAR v1 whose root is root.
func writeCAR(_ context.Context, bs *collector, root cid.Cid) ([]byte, error) {
	var buf bytes.Buffer
	if err := car.WriteHeader(&car.CarHeader{Roots: []cid.Cid{root}, Version: 1}, &buf); err != nil {
		return nil, err
	}
	for _, blk := range bs.blocks {
		if err := carutil.LdWrite(&buf, blk.Cid().Bytes(), blk.RawData()); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
