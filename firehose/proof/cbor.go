package proof

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// cborReader reads the few DAG-CBOR shapes of a CAR header and an MST node from a byte
// slice: unsigned integers, byte and text strings, arrays, maps, null and CID links (tag 42).
// Anything else, and indefinite lengths (which DAG-CBOR forbids), is an error.
type cborReader struct {
	b []byte
	i int
}

const (
	majUint   = 0
	majBytes  = 2
	majText   = 3
	majArray  = 4
	majMap    = 5
	majTag    = 6
	cborNull  = 0xf6
	cidTag    = 42
	maxLength = 1 << 20 // longer than any frame the stream accepts
)

var errTruncated = errors.New("truncated CBOR")

// head reads an item's major type and argument.
func (r *cborReader) head() (major byte, arg uint64, err error) {
	if r.i >= len(r.b) {
		return 0, 0, errTruncated
	}
	c := r.b[r.i]
	r.i++
	major, info := c>>5, c&0x1f
	var size int
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info == 24:
		size = 1
	case info == 25:
		size = 2
	case info == 26:
		size = 4
	case info == 27:
		size = 8
	default:
		return 0, 0, fmt.Errorf("CBOR item 0x%02x: indefinite or reserved length", c)
	}
	if len(r.b)-r.i < size {
		return 0, 0, errTruncated
	}
	var buf [8]byte
	copy(buf[8-size:], r.b[r.i:r.i+size])
	r.i += size
	return major, binary.BigEndian.Uint64(buf[:]), nil
}

// expect reads an item head of the given major type and returns its argument.
func (r *cborReader) expect(major byte) (uint64, error) {
	m, arg, err := r.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		return 0, fmt.Errorf("CBOR major type %d where %d belongs", m, major)
	}
	if (major == majArray || major == majMap) && arg > maxLength {
		return 0, fmt.Errorf("CBOR length %d", arg)
	}
	return arg, nil
}

// str reads a byte or text string; the slice aliases the input.
func (r *cborReader) str(major byte) ([]byte, error) {
	n, err := r.expect(major)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.i) {
		return nil, errTruncated
	}
	s := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return s, nil
}

func (r *cborReader) text() (string, error) {
	s, err := r.str(majText)
	return string(s), err
}

// key reads a map key that must be want (DAG-CBOR sorts map keys, so a node's are in a
// known order).
func (r *cborReader) key(want string) error {
	s, err := r.str(majText)
	if err != nil {
		return err
	}
	if string(s) != want {
		return fmt.Errorf("map key %q where %q belongs", s, want)
	}
	return nil
}

// link reads a CID link: tag 42 on a byte string holding 0x00 and the CID's bytes.
func (r *cborReader) link() (cid.Cid, error) {
	tag, err := r.expect(majTag)
	if err != nil {
		return cid.Undef, err
	}
	if tag != cidTag {
		return cid.Undef, fmt.Errorf("CBOR tag %d where a link (42) belongs", tag)
	}
	s, err := r.str(majBytes)
	if err != nil {
		return cid.Undef, err
	}
	if len(s) == 0 || s[0] != 0 {
		return cid.Undef, errors.New("link without its 0x00 prefix")
	}
	return cid.Cast(s[1:])
}

// nullableLink reads null or a CID link.
func (r *cborReader) nullableLink() (*cid.Cid, error) {
	if r.i < len(r.b) && r.b[r.i] == cborNull {
		r.i++
		return nil, nil
	}
	c, err := r.link()
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// end fails if anything follows the item just read.
func (r *cborReader) end() error {
	if r.i != len(r.b) {
		return fmt.Errorf("%d bytes after the CBOR item", len(r.b)-r.i)
	}
	return nil
}
