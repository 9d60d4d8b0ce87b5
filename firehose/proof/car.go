package proof

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// The commit's blocks are read here, not with indigo's LoadRepoFromCAR, because deciding a
// delete is paid for on every one of them and LoadRepoFromCAR was half of it: go-car's
// reader copies each block out of a pooled bufio.Reader, decodes the header with a
// reflection-based CBOR library and builds a multihash per block to compare, and indigo's
// cbor-gen decoders read the MST nodes a byte at a time. What is read here is exactly what
// LoadRepoFromCAR reads, checked the same way (every block against its CID, the header's
// version and first root), into indigo's own types: repo.Commit, decoded by indigo, and
// mst.Node, which indigo's InvertOp then works on. requireSameAsIndigo (on every commit of
// TestRandomCommits and FuzzDecide) and FuzzLoad hold the two readings equal.

// errNoBlock is a CID the CAR does not hold.
var errNoBlock = errors.New("block not in the commit's CAR")

// carBlocks is a CARv1's blocks by CID, each checked against its CID. The slices alias the
// CAR's bytes.
type carBlocks map[cid.Cid][]byte

// readCAR reads a CARv1: its first root and its blocks.
func readCAR(b []byte) (cid.Cid, carBlocks, error) {
	header, rest, err := section(b)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("CAR header: %w", err)
	}
	root, err := readCARHeader(header)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("CAR header: %w", err)
	}
	blocks := make(carBlocks, 8)
	for len(rest) > 0 {
		var s []byte
		if s, rest, err = section(rest); err != nil {
			return cid.Undef, nil, fmt.Errorf("CAR block %d: %w", len(blocks), err)
		}
		n, c, err := cid.CidFromBytes(s)
		if err != nil {
			return cid.Undef, nil, fmt.Errorf("CAR block %d: %w", len(blocks), err)
		}
		data := s[n:]
		if err := checkHash(c, data); err != nil {
			return cid.Undef, nil, fmt.Errorf("CAR block %d: %w", len(blocks), err)
		}
		blocks[c] = data
	}
	return root, blocks, nil
}

// section splits off one length-prefixed section of a CAR.
func section(b []byte) (s, rest []byte, err error) {
	l, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, nil, errors.New("malformed section length")
	}
	if l == 0 || l > uint64(len(b)-n) {
		return nil, nil, fmt.Errorf("section of %d bytes with %d left", l, len(b)-n)
	}
	return b[n : n+int(l)], b[n+int(l):], nil
}

// readCARHeader reads the header map {"roots": [links], "version": 1} and returns the
// first root, as LoadRepoFromCAR takes it.
func readCARHeader(h []byte) (cid.Cid, error) {
	r := cborReader{b: h}
	n, err := r.expect(majMap)
	if err != nil {
		return cid.Undef, err
	}
	var root cid.Cid
	var version uint64
	for range n {
		key, err := r.text()
		if err != nil {
			return cid.Undef, err
		}
		switch key {
		case "roots":
			count, err := r.expect(majArray)
			if err != nil {
				return cid.Undef, err
			}
			for i := range count {
				c, err := r.link()
				if err != nil {
					return cid.Undef, err
				}
				if i == 0 {
					root = c
				}
			}
		case "version":
			if version, err = r.expect(majUint); err != nil {
				return cid.Undef, err
			}
		default:
			return cid.Undef, fmt.Errorf("unexpected key %q", key)
		}
	}
	if err := r.end(); err != nil {
		return cid.Undef, err
	}
	if version != 1 {
		return cid.Undef, fmt.Errorf("unsupported CAR version %d", version)
	}
	if !root.Defined() {
		return cid.Undef, errors.New("no root CID")
	}
	return root, nil
}

// checkHash checks that data is the block c names. The CIDs of a repository (CIDv1,
// dag-cbor or raw, sha2-256) are checked with one SHA-256 and a compare; any other
// goes through go-cid.
func checkHash(c cid.Cid, data []byte) error {
	if cb := c.KeyString(); len(cb) == 36 && cb[0] == 1 && (cb[1] == cid.DagCBOR || cb[1] == cid.Raw) && cb[2] == 0x12 && cb[3] == 32 {
		if sum := sha256.Sum256(data); string(sum[:]) != cb[4:] {
			return fmt.Errorf("block %s does not hash to its CID", c)
		}
		return nil
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("block %s: %w", c, err)
	}
	if !sum.Equals(c) {
		return fmt.Errorf("block %s does not hash to its CID", c)
	}
	return nil
}
