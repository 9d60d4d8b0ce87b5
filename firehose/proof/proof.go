// Package proof decides, from a #commit's own blocks and without the network, whether an
// account still has records in a collection after a record of it was deleted.
//
// MST keys are "collection/rkey" paths, sorted, so one collection's records are contiguous.
// A sync-1.1 commit carries the MST nodes needed to invert its ops onto prevData, and
// inverting a delete means re-inserting the deleted key, which needs the nodes that hold its
// neighbours in the new tree. Once the ops have been inverted onto prevData (the checks of
// indigo's VerifyCommitMessage, see verifyCommit), the keys just before and after a
// deleted path are therefore in the blocks, and they settle the question: the collection
// still has records iff one of them is "collection/…". A neighbour that is not in the blocks
// makes the verdict Unknown, never a guess.
//
// A verdict is about the repository as of the commit's rev; applied out of order with the
// account's other commits it can be stale. The signature is not checked here (it needs the
// account's key from its DID document): the proof is as good as the relay's word, which is
// the same trust the stream's adds already rest on.
package proof

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Outcome is what the proof says about one collection of one account.
type Outcome uint8

const (
	// Unknown: the commit does not prove either way; ask the account's PDS.
	Unknown Outcome = iota
	// Kept: the account still has at least one record in the collection.
	Kept
	// Gone: the account has no record left in the collection.
	Gone
)

func (o Outcome) String() string {
	switch o {
	case Kept:
		return "kept"
	case Gone:
		return "gone"
	default:
		return "unknown"
	}
}

// Reason says why a verdict is Unknown. The values are short and fixed, fit for a metric label.
type Reason string

const (
	// ReasonTooBig: the commit has the tooBig flag; its blocks are not a complete diff.
	ReasonTooBig Reason = "too_big"
	// ReasonNoBlocks: the commit has no blocks at all.
	ReasonNoBlocks Reason = "no_blocks"
	// ReasonLegacyOp: a delete or update without prev (pre-sync-1.1): nothing to invert to.
	ReasonLegacyOp Reason = "legacy_op"
	// ReasonNoPrevData: no prevData to check the inversion against.
	ReasonNoPrevData Reason = "no_prev_data"
	// ReasonInvalid: the commit fails a structural check: an unreadable CAR, a commit block
	// that does not match the message, a malformed op, a create or update that is not in the
	// tree or whose record block is missing, an op that cannot be inverted.
	ReasonInvalid Reason = "invalid_commit"
	// ReasonPrevData: the ops, inverted, do not land on prevData.
	ReasonPrevData Reason = "prev_data_mismatch"
	// ReasonPartial: an MST node the checks or the neighbour search need is not in the
	// blocks (mst.ErrPartialTree). indigo does not wrap that error on every path, so some
	// missing nodes come out as ReasonInvalid, and ops that lie about the diff can come out as
	// ReasonPartial: the reasons are for metrics and logs, not for the caller to branch on.
	ReasonPartial Reason = "partial_tree"
)

// Verdict is the decision for one collection. Reason and Err are set only when Outcome is
// Unknown; Err carries the detail, with mst.ErrPartialTree in its chain for ReasonPartial.
type Verdict struct {
	Outcome Outcome
	Reason  Reason
	Err     error
}

// Decide returns a verdict for each collection with a delete op in evt: after the commit,
// does the account still have a record in it? Collections with only creates and updates get
// none (they certainly have records), nor do ops whose path does not parse. A commit without
// deletes costs nothing. Every problem with the commit is an Unknown verdict with a reason,
// never an error: the caller's answer to Unknown is the same whatever the cause (ask the PDS).
//
// The decision is made on the tree after all ops, so a commit that deletes a collection's last
// record and creates another one in it is Kept. Decide does not retain evt.
func Decide(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit) map[string]Verdict {
	return DecideWith(ctx, evt, parseRepoPath)
}

// DecideWith is Decide with the caller's reading of an op's path into its collection, which
// must accept and refuse exactly what indigo's syntax.ParseRepoPath does (the firehose's
// remembers the collections it has seen: the regular expressions were a quarter of deciding).
func DecideWith(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit, collection func(path string) (string, error)) map[string]Verdict {
	deleted := deletedPaths(evt, collection)
	if len(deleted) == 0 {
		return nil
	}
	out := make(map[string]Verdict, len(deleted))
	reason, err := verifyCommit(ctx, evt, func(root *mst.Node) {
		for coll, paths := range deleted {
			out[coll] = decideCollection(root, coll, paths)
		}
	})
	if err != nil {
		for coll := range deleted {
			out[coll] = Verdict{Outcome: Unknown, Reason: reason, Err: err}
		}
	}
	return out
}

// deletedPaths groups the paths of evt's delete ops by collection.
func deletedPaths(evt *comatproto.SyncSubscribeRepos_Commit, collection func(string) (string, error)) map[string][]string {
	if evt == nil {
		return nil
	}
	var out map[string][]string
	for _, op := range evt.Ops {
		if op == nil || op.Action != "delete" {
			continue
		}
		coll, err := collection(op.Path)
		if err != nil {
			// The stream handler skips and counts such ops; no collection to decide for.
			continue
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[coll] = append(out[coll], op.Path)
	}
	return out
}

// parseRepoPath is indigo's reading of a record path.
func parseRepoPath(path string) (string, error) {
	nsid, _, err := syntax.ParseRepoPath(path)
	return nsid.String(), err
}

// decideCollection looks at the neighbours of each deleted path of coll in the new tree.
// One path that resolves settles the collection (all of its records lie in one run of keys,
// so if any remains, it or a closer one of the collection is next to every deleted path);
// later paths are tried only when an earlier one's neighbours are not in the blocks.
func decideCollection(root *mst.Node, coll string, paths []string) Verdict {
	prefix := []byte(coll + "/")
	var firstErr error
	for _, path := range paths {
		key := []byte(path)
		prev, errPrev := before(root, key)
		if errPrev == nil && bytes.HasPrefix(prev, prefix) {
			return Verdict{Outcome: Kept}
		}
		next, errNext := after(root, key)
		if errNext == nil && bytes.HasPrefix(next, prefix) {
			return Verdict{Outcome: Kept}
		}
		if errPrev == nil && errNext == nil {
			return Verdict{Outcome: Gone}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("neighbours of %s: %w", path, errors.Join(errPrev, errNext))
		}
	}
	return Verdict{Outcome: Unknown, Reason: ReasonPartial, Err: firstErr}
}
