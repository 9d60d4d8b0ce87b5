package rocksindex

import (
	"fmt"

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
// status. Both rbc (within a collection) and acct are in DID order, so one acct iterator
// walks beside the scan and seeks only when it falls behind: at most one seek per inactive
// account in the range, however many DIDs the page skips or keeps.
func (ix *Index) listListed(collection, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	start := collectionPrefix(collection)
	if after != "" {
		start = append(rbcKey(collection, after), sep)
	}
	acctIt := ix.db.NewIteratorCF(ix.read, ix.acct.cf)
	defer acctIt.Close()
	var acctKey []byte // the acct iterator's key; nil once it is past the end
	seek := func(did string) {
		acctIt.Seek([]byte(did))
		acctKey = nil
		if acctIt.Valid() {
			k := acctIt.Key()
			acctKey = append(acctKey[:0], k.Data()...)
			k.Free()
		}
	}
	first := true
	var dids []string
	err := ix.scan(ix.rbc, start, collectionUpperBound(collection), func(key []byte) bool {
		_, did, err := parseRBCKey(key)
		if err != nil {
			return true
		}
		if first || (acctKey != nil && string(acctKey) < did) {
			seek(did)
			first = false
		}
		if acctKey != nil && string(acctKey) == did {
			return true // inactive or deleted: not listed
		}
		dids = append(dids, did)
		return len(dids) < limit
	})
	if err == nil {
		err = acctIt.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("list repos of %s: %w", collection, err)
	}
	return dids, nil
}
