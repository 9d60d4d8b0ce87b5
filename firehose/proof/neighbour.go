package proof

import (
	"bytes"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
)

// indigo's mst has no neighbour or range query: Tree.Get answers only for an exact key, and
// Tree.Walk silently skips subtrees missing from a partial tree, which would turn a missing
// node into a false "no neighbour". before and after are that query, and they only conclude
// from nodes that are present: a subtree that may hold the answer but is only a CID is an
// error wrapping mst.ErrPartialTree. A subtree is skipped without being read only when the
// value entry beside it proves it cannot hold the answer (every key under a child pointer
// lies between the values on either side of it).

// before returns the greatest key below key in the subtree n, or nil if there is none.
func before(n *mst.Node, key []byte) ([]byte, error) {
	if n == nil || n.Stub {
		return nil, fmt.Errorf("%w: node before %q not in blocks", mst.ErrPartialTree, key)
	}
	for i := len(n.Entries) - 1; i >= 0; i-- {
		e := &n.Entries[i]
		if e.IsValue() {
			if bytes.Compare(e.Key, key) < 0 {
				return e.Key, nil
			}
			continue
		}
		if !e.IsChild() {
			continue
		}
		// Keys under this child sort above the value before it: if that value is not below
		// key, neither is anything under the child.
		if i > 0 && n.Entries[i-1].IsValue() && bytes.Compare(n.Entries[i-1].Key, key) >= 0 {
			continue
		}
		if e.Child == nil {
			return nil, fmt.Errorf("%w: subtree %s before %q not in blocks", mst.ErrPartialTree, e.ChildCID, key)
		}
		k, err := before(e.Child, key)
		if err != nil || k != nil {
			return k, err
		}
	}
	return nil, nil
}

// after returns the least key above key in the subtree n, or nil if there is none.
func after(n *mst.Node, key []byte) ([]byte, error) {
	if n == nil || n.Stub {
		return nil, fmt.Errorf("%w: node after %q not in blocks", mst.ErrPartialTree, key)
	}
	for i := range n.Entries {
		e := &n.Entries[i]
		if e.IsValue() {
			if bytes.Compare(e.Key, key) > 0 {
				return e.Key, nil
			}
			continue
		}
		if !e.IsChild() {
			continue
		}
		// Keys under this child sort below the value after it: if that value is not above
		// key, neither is anything under the child.
		if i+1 < len(n.Entries) && n.Entries[i+1].IsValue() && bytes.Compare(n.Entries[i+1].Key, key) <= 0 {
			continue
		}
		if e.Child == nil {
			return nil, fmt.Errorf("%w: subtree %s after %q not in blocks", mst.ErrPartialTree, e.ChildCID, key)
		}
		k, err := after(e.Child, key)
		if err != nil || k != nil {
			return k, err
		}
	}
	return nil, nil
}
