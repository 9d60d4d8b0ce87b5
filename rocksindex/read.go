package rocksindex

// #cgo LDFLAGS: -lrocksdb
// #include <stdint.h>
// #include <string.h>
// #include "rocksdb/c.h"
//
// // colindex_list is listListed's loop in one call: from rbc's current position, up to limit
// // DIDs (each key past its prefix bytes) whose key acct does not hold, appended to out as
// // a 2-byte little-endian length and the DID. acct walks beside rbc and seeks only when it
// // falls behind (*begun says whether it has been positioned). It stops early, without
// // moving past the DID that did not fit, when out is full; *used is the bytes written.
// static int colindex_list(rocksdb_iterator_t* it, rocksdb_iterator_t* acct, size_t prefix,
//                          int limit, char* out, size_t cap, size_t* used, int* begun) {
//   int n = 0;
//   size_t off = 0;
//   while (n < limit && rocksdb_iter_valid(it)) {
//     size_t klen;
//     const char* k = rocksdb_iter_key(it, &klen);
//     if (klen > prefix && klen - prefix <= 0xffff) { // else malformed: skipped
//       const char* did = k + prefix;
//       size_t dlen = klen - prefix;
//       int inactive = 0;
//       int valid = *begun && rocksdb_iter_valid(acct);
//       size_t alen = 0;
//       const char* a = valid ? rocksdb_iter_key(acct, &alen) : NULL;
//       int behind = 0;
//       if (valid) {
//         int c = memcmp(a, did, alen < dlen ? alen : dlen);
//         behind = c < 0 || (c == 0 && alen < dlen);
//       }
//       if (!*begun || behind) {
//         rocksdb_iter_seek(acct, did, dlen);
//         *begun = 1;
//         valid = rocksdb_iter_valid(acct);
//         a = valid ? rocksdb_iter_key(acct, &alen) : NULL;
//       }
//       inactive = valid && alen == dlen && memcmp(a, did, dlen) == 0;
//       if (!inactive) {
//         if (off + 2 + dlen > cap) break;
//         out[off] = (char)(dlen & 0xff);
//         out[off + 1] = (char)(dlen >> 8);
//         memcpy(out + off + 2, did, dlen);
//         off += 2 + dlen;
//         n++;
//       }
//     }
//     rocksdb_iter_next(it);
//   }
//   *used = off;
//   return n;
// }
import "C"

import (
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// The read path of listReposByCollection: a collection's DIDs in DID order, inactive accounts
// left out.

// ListRepos returns up to limit DIDs of collection in DID order, starting after the DID
// after ("" starts at the beginning).
// Accounts that are not active (taken down, suspended, deactivated, deleted) are not listed.
func (ix *Index) ListRepos(collection, after string, limit int) ([]string, error) {
	return ix.listListed(collection, after, limit)
}

// listRaw returns up to limit DIDs of collection in DID order, starting after the DID
// after, every DID the rbc family holds.
func (ix *Index) listRaw(collection, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	start := collectionPrefix(collection)
	if after != "" {
		// <collection> 0x00 <after> 0x00 sorts after <after> and before any longer DID.
		start = append(rbcKey(collection, after), sep)
	}
	var dids []string
	err := ix.scan(ix.rbc, start, collectionUpperBound(collection), func(key []byte) bool {
		_, did, err := parseRBCKey(key)
		if err == nil {
			dids = append(dids, did)
		}
		return len(dids) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("list repos of %s: %w", collection, err)
	}
	return dids, nil
}

// scan visits keys of cf in [start, end) until visit returns false.
func (ix *Index) scan(cf *grocksdb.ColumnFamilyHandle, start, end []byte, visit func(key []byte) bool) error {
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetIterateUpperBound(end)
	it := ix.db.NewIteratorCF(ro, cf)
	defer it.Close()
	for it.Seek(start); it.Valid(); it.Next() {
		k := it.Key()
		more := visit(k.Data())
		k.Free()
		if !more {
			break
		}
	}
	return it.Err()
}

// listListed is ListRepos: the DIDs of collection that are listed, i.e. whose account has no
// status. This is the hot path of the public endpoint, so the walk itself is one C call
// (colindex_list) rather than three cgo calls per key (Valid, Key, Next), which measured as
// most of a page's cost; both iterators are still made and closed by grocksdb.
func (ix *Index) listListed(collection, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	c := ix.newCollIter(nil, collection, after)
	defer c.close()
	acct := ix.newAcctWalker(nil)
	defer acct.close()
	// did:plc: DIDs take 34 bytes here; a page of longer ones just takes another call. The
	// buffer is only read by appendDIDs, which copies, so it goes back to the pool.
	size := min(limit, 10001)*34 + 64
	bp := pageBuffers.Get().(*[]byte)
	defer pageBuffers.Put(bp)
	if cap(*bp) < size {
		*bp = make([]byte, size)
	}
	buf := (*bp)[:size]
	var used C.size_t
	var begun C.int
	var dids []string
	for {
		n := C.colindex_list(cIter(c.it), cIter(acct.it), C.size_t(c.prefix), C.int(limit-len(dids)),
			(*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &used, &begun)
		dids = appendDIDs(dids, buf[:used], int(n))
		if len(dids) >= limit || !c.it.Valid() {
			break
		}
		// buf was full: the DIDs are copied out, so it is reused, or doubled when not even
		// one DID fitted.
		if n == 0 {
			buf = make([]byte, 2*len(buf))
			*bp = buf
		}
	}
	err := c.it.Err()
	if err == nil {
		err = acct.err()
	}
	if err != nil {
		return nil, fmt.Errorf("list repos of %s: %w", collection, err)
	}
	return dids, nil
}

// pageBuffers holds listListed's C output buffers: a page of 1,000 DIDs needs 34 KB, which a
// new slice zeroes on every request.
var pageBuffers = sync.Pool{New: func() any { return new([]byte) }}

// appendDIDs decodes colindex_list's output into strings sharing one allocation. The slice
// grows once, by n: grown by append, a 100-DID page took eight allocations and copies, 12%
// of the index read at limit 100 (the read benchmark's profile).
func appendDIDs(dids []string, b []byte, n int) []string {
	if n == 0 {
		return dids
	}
	dids = slices.Grow(dids, n)
	all := string(b)
	for off := 0; off+2 <= len(all); {
		l := int(all[off]) | int(all[off+1])<<8
		dids = append(dids, all[off+2:off+2+l])
		off += 2 + l
	}
	return dids
}

// cIter is the C iterator inside a grocksdb.Iterator (its only field, in the grocksdb
// version go.mod pins; init checks the layout).
func cIter(it *grocksdb.Iterator) *C.rocksdb_iterator_t {
	return *(**C.rocksdb_iterator_t)(unsafe.Pointer(it))
}

func init() {
	if unsafe.Sizeof(grocksdb.Iterator{}) != unsafe.Sizeof(uintptr(0)) {
		panic("rocksindex: grocksdb.Iterator is no longer one C pointer; see cIter")
	}
}
