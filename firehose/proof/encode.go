package proof

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// rootCID is indigo's Tree.RootCID: the CID of the tree's root, re-encoding the nodes marked
// dirty (children first) and taking the cached CID of the others. It is rewritten here, node
// for node the same walk, flags and NodeData conversion, because cbor-gen's encoder and
// go-cid's hashing were a third of deciding a delete; the encoding is written into one
// buffer reused for every node.
//
// Its only use is to compare the inverted tree with the commit's prevData, and a mistake in
// it cannot make that compare succeed falsely: equal CIDs mean this encoder wrote, byte for
// byte, the block prevData names. TestRootCIDMatchesIndigo holds it to indigo's on random trees.
func rootCID(t *mst.Tree) (cid.Cid, error) {
	if t.Root != nil && t.Root.Stub && !t.Root.Dirty && t.Root.CID != nil {
		return *t.Root.CID, nil
	}
	var w nodeWriter
	c, err := w.cidOf(t.Root)
	if err != nil {
		return cid.Undef, err
	}
	return *c, nil
}

// nodeWriter encodes MST nodes; its slices are reused from node to node.
type nodeWriter struct {
	buf     []byte
	entries []entryData
}

// entryData is one entry of a node's "e" list.
type entryData struct {
	prefix int
	suffix []byte
	value  cid.Cid
	right  *cid.Cid
}

// cidOf is indigo's Node.writeBlocks with onlyDirty and no blockstore.
func (w *nodeWriter) cidOf(n *mst.Node) (*cid.Cid, error) {
	if n == nil || n.Stub {
		return nil, fmt.Errorf("%w: nil tree node", mst.ErrInvalidTree)
	}
	if !n.Dirty && n.CID != nil {
		return n.CID, nil
	}
	for i := range n.Entries {
		e := &n.Entries[i]
		if e.IsValue() && e.Dirty {
			e.Dirty = false
		}
		if !e.IsChild() {
			continue
		}
		if e.Child != nil && (e.Dirty || e.Child.Dirty) {
			cc, err := w.cidOf(e.Child)
			if err != nil {
				return nil, err
			}
			e.ChildCID = cc
			e.Dirty = false
		}
	}
	c, err := w.encode(n)
	if err != nil {
		return nil, err
	}
	n.CID = c
	n.Dirty = false
	return c, nil
}

// encode returns the CID of n's block: n as indigo's NodeData, in DAG-CBOR as cbor-gen
// writes it ({"e": [{"k", "p", "t", "v"}, …], "l"}, shortest heads).
func (w *nodeWriter) encode(n *mst.Node) (*cid.Cid, error) {
	var left *cid.Cid
	w.entries = w.entries[:0]
	var prev []byte
	for i := range n.Entries {
		e := &n.Entries[i]
		if i == 0 && e.IsChild() {
			left = e.ChildCID
			continue
		}
		if e.IsChild() {
			if len(w.entries) == 0 {
				return nil, errors.New("malformed tree node: a child pointer with no entry before it")
			}
			w.entries[len(w.entries)-1].right = e.ChildCID
		}
		if e.IsValue() {
			p := mst.CountPrefixLen(prev, e.Key)
			w.entries = append(w.entries, entryData{prefix: p, suffix: e.Key[p:], value: *e.Value})
			prev = e.Key
		}
	}
	b := append(w.buf[:0], 0xa2, 0x61, 'e')
	b = appendHead(b, majArray, uint64(len(w.entries)))
	for _, e := range w.entries {
		b = append(b, 0xa4, 0x61, 'k')
		b = appendHead(b, majBytes, uint64(len(e.suffix)))
		b = append(b, e.suffix...)
		b = append(b, 0x61, 'p')
		b = appendHead(b, majUint, uint64(e.prefix))
		b = append(b, 0x61, 't')
		var err error
		if b, err = appendNullableLink(b, e.right); err != nil {
			return nil, err
		}
		b = append(b, 0x61, 'v')
		if b, err = appendLink(b, e.value); err != nil {
			return nil, err
		}
	}
	b = append(b, 0x61, 'l')
	b, err := appendNullableLink(b, left)
	if err != nil {
		return nil, err
	}
	w.buf = b
	sum := sha256.Sum256(b)
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		return nil, err
	}
	c := cid.NewCidV1(cid.DagCBOR, mh)
	return &c, nil
}

// appendHead appends a CBOR item head in its shortest form.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= 0xff:
		return append(b, m|24, byte(n))
	case n <= 0xffff:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendLink appends a CID link: tag 42, then a byte string of 0x00 and the CID's bytes.
func appendLink(b []byte, c cid.Cid) ([]byte, error) {
	if !c.Defined() {
		return nil, errors.New("undefined cid")
	}
	raw := c.KeyString()
	b = append(b, 0xd8, cidTag)
	b = appendHead(b, majBytes, uint64(len(raw)+1))
	b = append(b, 0)
	return append(b, raw...), nil
}

func appendNullableLink(b []byte, c *cid.Cid) ([]byte, error) {
	if c == nil {
		return append(b, cborNull), nil
	}
	return appendLink(b, *c)
}
