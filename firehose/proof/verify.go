package proof

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
)

// verifyCommit runs the structural checks of indigo's repo.VerifyCommitMessage, short of the
// signature: the CAR's commit matches the message, each create and update is in the tree with
// its record in the blocks, and the ops, inverted, land on prevData. read is given the
// commit's partial MST (the tree after the commit) before the inversion rewrites it in place,
// which saves copying the tree; what read concludes stands only if verifyCommit returns no
// error.
//
// It is VerifyCommitMessage's sequence (LoadRepoFromCAR, InvertOp, RootCID) rather than a
// call to it, for three reasons. Its op order, NormalizeOps, is not a strict weak order
// (a delete sorts before a create, and a create before a delete whose path is greater), so a
// create can be inverted before a delete; when the commit replaced every record of the repo,
// that empties the root, indigo's Remove leaves the empty root at its old height, the delete's
// re-insert builds a tree that is not canonical, and a valid commit fails. It returns success
// without inverting when an op has no prev, and skips the root check without prevData. And it
// builds a logger and formats two CIDs per call, at firehose rates.
//
// Two steps of the sequence are this package's own, for speed, each held equal to indigo's by
// tests: loadCommit for LoadRepoFromCAR (car.go says why) and rootCID for RootCID
// (encode.go). InvertOp, the tree surgery, is indigo's.
func verifyCommit(_ context.Context, evt *comatproto.SyncSubscribeRepos_Commit, read func(root *mst.Node)) (Reason, error) {
	if evt.TooBig {
		return ReasonTooBig, fmt.Errorf("commit %s of %s: tooBig set", evt.Rev, evt.Repo)
	}
	if len(evt.Blocks) == 0 {
		return ReasonNoBlocks, fmt.Errorf("commit %s of %s: no blocks", evt.Rev, evt.Repo)
	}
	if evt.PrevData == nil {
		return ReasonNoPrevData, fmt.Errorf("commit %s of %s: no prevData", evt.Rev, evt.Repo)
	}
	ops, reason, err := inversionOrder(evt.Ops)
	if err != nil {
		return reason, fmt.Errorf("commit %s of %s: %w", evt.Rev, evt.Repo, err)
	}
	commit, tree, blocks, err := loadCommit(evt.Blocks)
	if err != nil {
		return classify(err), fmt.Errorf("commit %s of %s: load blocks: %w", evt.Rev, evt.Repo, err)
	}
	if commit.DID != evt.Repo || commit.Rev != evt.Rev {
		return ReasonInvalid, fmt.Errorf("commit %s of %s: blocks hold commit %s of %s", evt.Rev, evt.Repo, commit.Rev, commit.DID)
	}
	for _, op := range ops {
		if op.Value == nil {
			continue
		}
		got, err := tree.Get([]byte(op.Path))
		if err != nil {
			return classify(err), fmt.Errorf("commit %s of %s: look up %s: %w", evt.Rev, evt.Repo, op.Path, err)
		}
		if got == nil || *got != *op.Value {
			return ReasonInvalid, fmt.Errorf("commit %s of %s: %s is %v in the tree, %s in the op", evt.Rev, evt.Repo, op.Path, got, op.Value)
		}
		if _, ok := blocks[*got]; !ok {
			return ReasonInvalid, fmt.Errorf("commit %s of %s: record %s: %w", evt.Rev, evt.Repo, op.Path, errNoBlock)
		}
	}
	read(tree.Root)
	for _, op := range ops {
		if err := repo.InvertOp(tree, &op); err != nil {
			return classify(err), fmt.Errorf("commit %s of %s: invert %s: %w", evt.Rev, evt.Repo, op.Path, err)
		}
	}
	root, err := rootCID(tree)
	if err != nil {
		return classify(err), fmt.Errorf("commit %s of %s: root of inverted tree: %w", evt.Rev, evt.Repo, err)
	}
	if prev := cid.Cid(*evt.PrevData); root != prev {
		return ReasonPrevData, fmt.Errorf("commit %s of %s: ops invert to %s, prevData is %s", evt.Rev, evt.Repo, root, prev)
	}
	return "", nil
}

// inversionOrder turns the message's ops into indigo Operations, deletes first (re-inserting
// only grows the tree, and removals then end on prevData), each group by path.
func inversionOrder(rops []*comatproto.SyncSubscribeRepos_RepoOp) ([]repo.Operation, Reason, error) {
	ops := make([]repo.Operation, 0, len(rops))
	seen := make(map[string]bool, len(rops))
	for _, rop := range rops {
		if rop == nil {
			return nil, ReasonInvalid, errors.New("nil op")
		}
		if seen[rop.Path] {
			return nil, ReasonInvalid, fmt.Errorf("two ops on %s", rop.Path)
		}
		seen[rop.Path] = true
		op := repo.Operation{Path: rop.Path, Value: (*cid.Cid)(rop.Cid), Prev: (*cid.Cid)(rop.Prev)}
		switch {
		case (rop.Action == "delete" || rop.Action == "update") && rop.Prev == nil:
			// Pre-sync-1.1: nothing to invert to.
			return nil, ReasonLegacyOp, fmt.Errorf("%s of %s without prev", rop.Action, rop.Path)
		case rop.Action == "create" && op.IsCreate(), rop.Action == "update" && op.IsUpdate(), rop.Action == "delete" && op.IsDelete():
		default:
			return nil, ReasonInvalid, fmt.Errorf("malformed %s op on %s", rop.Action, rop.Path)
		}
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b repo.Operation) int {
		if a.IsDelete() != b.IsDelete() {
			if a.IsDelete() {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return ops, "", nil
}

// classify tells a missing MST node from other failures. indigo wraps mst.ErrPartialTree on
// most paths of a failed lookup or inversion, not all, so some missing nodes come out as
// ReasonInvalid.
func classify(err error) Reason {
	if errors.Is(err, mst.ErrPartialTree) {
		return ReasonPartial
	}
	return ReasonInvalid
}

// loadCommit reads a commit's CAR as LoadRepoFromCAR does: the commit block named by the
// first root, decoded and checked by indigo, and the MST under it.
func loadCommit(car []byte) (*repo.Commit, *mst.Tree, carBlocks, error) {
	root, blocks, err := readCAR(car)
	if err != nil {
		return nil, nil, nil, err
	}
	data, ok := blocks[root]
	if !ok {
		return nil, nil, nil, fmt.Errorf("commit block: %w", errNoBlock)
	}
	var commit repo.Commit
	if err := commit.UnmarshalCBOR(bytes.NewReader(data)); err != nil {
		return nil, nil, nil, fmt.Errorf("commit block: %w", err)
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, nil, nil, fmt.Errorf("commit block: %w", err)
	}
	tree, err := loadTree(blocks, commit.Data)
	if err != nil {
		return nil, nil, nil, err
	}
	return &commit, tree, blocks, nil
}
