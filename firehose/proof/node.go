package proof

import (
	"fmt"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
)

// loadTree reads the MST under root from blocks into indigo's mst.Node, as indigo's
// LoadTreeFromStore does: every node the blocks hold is decoded, a child that is not in them
// stays a ChildCID without a Child (a partial tree), and heights come from the first key of
// each node, or from the node above. The root must be in the blocks.
//
// One difference, on input indigo would take: a block used twice in the tree is an error.
// No valid MST has one (a node's keys fix its place in the tree), and loading it again
// for each reference is how a few hostile blocks become an exponential load.
func loadTree(blocks carBlocks, root cid.Cid) (*mst.Tree, error) {
	if _, ok := blocks[root]; !ok {
		return nil, fmt.Errorf("MST root %s: %w", root, errNoBlock)
	}
	l := treeLoader{blocks: blocks, used: make(map[cid.Cid]bool, len(blocks))}
	n, err := l.node(root)
	if err != nil {
		return nil, fmt.Errorf("MST root: %w", err)
	}
	ensureHeights(n)
	return &mst.Tree{Root: n}, nil
}

type treeLoader struct {
	blocks carBlocks
	used   map[cid.Cid]bool
}

// node decodes the node ref, which the blocks hold, and, recursively, its children that
// they hold too.
func (l *treeLoader) node(ref cid.Cid) (*mst.Node, error) {
	data := l.blocks[ref]
	if l.used[ref] {
		return nil, fmt.Errorf("MST node %s appears twice in the tree", ref)
	}
	l.used[ref] = true
	n, err := decodeNode(data, ref)
	if err != nil {
		return nil, fmt.Errorf("MST node %s: %w", ref, err)
	}
	for i := range n.Entries {
		e := &n.Entries[i]
		if e.ChildCID == nil {
			continue
		}
		if _, ok := l.blocks[*e.ChildCID]; !ok {
			continue // a partial tree
		}
		child, err := l.node(*e.ChildCID)
		if err != nil {
			return nil, err
		}
		e.Child = child
		if n.Height == -1 && child.Height >= 0 {
			n.Height = child.Height + 1
		}
	}
	return n, nil
}

// decodeNode decodes one MST node block, {"e": [{"k", "p", "t", "v"}, …], "l": link|null}
// in DAG-CBOR's key order, into the mst.Node that indigo's NodeData.Node builds from it.
func decodeNode(data []byte, ref cid.Cid) (*mst.Node, error) {
	r := cborReader{b: data}
	if n, err := r.expect(majMap); err != nil || n != 2 {
		return nil, fmt.Errorf("node is not a two-key map: %d, %v", n, err)
	}
	if err := r.key("e"); err != nil {
		return nil, err
	}
	count, err := r.expect(majArray)
	if err != nil {
		return nil, err
	}
	// indigo's decoder takes at most 8,192 entries; an entry takes at least 16 bytes. Both
	// bound what a hostile header can make this allocate.
	if count > maxEntries || count > uint64(len(data)-r.i)/16 {
		return nil, fmt.Errorf("%d entries in a %d-byte node", count, len(data))
	}
	// Slot 0 is for the left child, dropped if there is none; then each value and the
	// child to its right.
	entries := make([]mst.NodeEntry, 1, 1+2*count)
	values := make([]cid.Cid, count)
	height := -1
	var prev []byte
	for i := range count {
		key, right, err := decodeEntry(&r, prev, &values[i])
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		entries = append(entries, mst.NodeEntry{Key: key, Value: &values[i]})
		if right != nil {
			entries = append(entries, mst.NodeEntry{ChildCID: right})
		}
		if height < 0 {
			height = mst.HeightForKey(key)
		}
		prev = key
	}
	if err := r.key("l"); err != nil {
		return nil, err
	}
	left, err := r.nullableLink()
	if err != nil {
		return nil, fmt.Errorf("left: %w", err)
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if left != nil {
		entries[0].ChildCID = left
	} else {
		entries = entries[1:]
	}
	return &mst.Node{Entries: entries, Height: height, CID: &ref}, nil
}

// decodeEntry decodes one entry of a node's "e" list: its key (the first p bytes of the
// previous key, then k), its value into value, and the child to its right if any.
func decodeEntry(r *cborReader, prev []byte, value *cid.Cid) (key []byte, right *cid.Cid, err error) {
	if n, err := r.expect(majMap); err != nil || n != 4 {
		return nil, nil, fmt.Errorf("entry is not a four-key map: %d, %v", n, err)
	}
	if err := r.key("k"); err != nil {
		return nil, nil, err
	}
	suffix, err := r.str(majBytes)
	if err != nil {
		return nil, nil, err
	}
	if err := r.key("p"); err != nil {
		return nil, nil, err
	}
	p, err := r.expect(majUint)
	if err != nil {
		return nil, nil, err
	}
	if p > uint64(len(prev)) {
		return nil, nil, fmt.Errorf("prefix of %d bytes of a %d-byte key", p, len(prev))
	}
	if int(p)+len(suffix) > mst.MAX_KEY_BYTES {
		// Not a key any repository can hold; refused rather than built (a node of keys that
		// each repeat the one before would otherwise cost the square of its size).
		return nil, nil, fmt.Errorf("key of %d bytes", int(p)+len(suffix))
	}
	key = make([]byte, int(p)+len(suffix))
	copy(key[copy(key, prev[:p]):], suffix)
	if err := r.key("t"); err != nil {
		return nil, nil, err
	}
	if right, err = r.nullableLink(); err != nil {
		return nil, nil, fmt.Errorf("right: %w", err)
	}
	if err := r.key("v"); err != nil {
		return nil, nil, err
	}
	if *value, err = r.link(); err != nil {
		return nil, nil, fmt.Errorf("value: %w", err)
	}
	return key, right, nil
}

// maxEntries is the most entries a node may hold: indigo's decoder refuses more.
const maxEntries = 8192

// ensureHeights gives each node whose height its keys did not tell (one with only child
// pointers) its parent's height less one, as indigo's loader does.
func ensureHeights(n *mst.Node) {
	if n.Height <= 0 {
		return
	}
	for _, e := range n.Entries {
		if e.Child != nil {
			if e.Child.Height < 0 {
				e.Child.Height = n.Height - 1
			}
			ensureHeights(e.Child)
		}
	}
}
