package rocksindex

import (
	"encoding/binary"
	"fmt"

	"github.com/linxGnu/grocksdb"
)

// cfListed is a sweep's scratch: key <sweep id, 8 bytes big-endian><did> for every account the
// sweep's relay listed as active. A relay such as indigo's lists active accounts only, so the
// accounts the index holds that the relay did not list are the ones whose status the sweep
// must ask about one by one (UnlistedAfter). A sweep forgets its keys when it finishes.
const cfListed = "listed"

func listedKey(sweep int64, did string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(sweep)), did...)
}

// MarkListed records that sweep's relay listed dids, synced: the sweep saves its cursor past
// them only after this returns.
func (ix *Index) MarkListed(sweep int64, dids []string) error {
	if len(dids) == 0 {
		return nil
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for _, did := range dids {
		wb.PutCF(ix.listed, listedKey(sweep, did), nil)
	}
	if err := ix.db.Write(ix.syncWrite, wb); err != nil {
		return fmt.Errorf("mark %d accounts listed: %w", len(dids), err)
	}
	return nil
}

// ForgetListed drops what MarkListed recorded for sweep.
func (ix *Index) ForgetListed(sweep int64) error {
	start := binary.BigEndian.AppendUint64(nil, uint64(sweep))
	end := binary.BigEndian.AppendUint64(nil, uint64(sweep)+1)
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	wb.DeleteRangeCF(ix.listed, start, end)
	if err := ix.db.Write(ix.syncWrite, wb); err != nil {
		return fmt.Errorf("forget the accounts sweep %d listed: %w", sweep, err)
	}
	return nil
}

// UnlistedAfter walks the accounts the index holds a pair of, in DID order after after, at
// most scan of them, and returns the ones sweep's relay did not list and that are not deleted
// here (a deleted account is final: nothing to ask), at most most of them. next is where the
// next call goes on from (the last account walked, or the last returned when there were more),
// "" once every account has been walked.
func (ix *Index) UnlistedAfter(sweep int64, after string, scan, most int) (unlisted []string, next string, err error) {
	it := ix.db.NewIteratorCF(ix.read, ix.cbr)
	defer it.Close()
	seek := []byte(after)
	if after != "" {
		seek = collectionUpperBound(after) // past every key of after
	}
	var dids []string
	for it.Seek(seek); it.Valid() && len(dids) < scan; {
		k := it.Key()
		did, _, perr := parseCBRKey(k.Data())
		k.Free()
		if perr != nil {
			return nil, "", fmt.Errorf("walk accounts: %w", perr)
		}
		dids = append(dids, did)
		it.Seek(collectionUpperBound(did))
	}
	if err := it.Err(); err != nil {
		return nil, "", fmt.Errorf("walk accounts: %w", err)
	}
	if len(dids) == 0 {
		return nil, "", nil
	}
	keys := make([][]byte, len(dids))
	for i, did := range dids {
		keys[i] = listedKey(sweep, did)
	}
	vals, err := ix.db.MultiGetCF(ix.read, ix.listed, keys...)
	if err != nil {
		return nil, "", fmt.Errorf("look up listed accounts: %w", err)
	}
	defer vals.Destroy()
	for i, did := range dids {
		if vals[i].Exists() {
			continue
		}
		st, err := ix.AccountStatus(did)
		if err != nil {
			return nil, "", err
		}
		if st != StatusDeleted {
			unlisted = append(unlisted, did)
		}
		if len(unlisted) == most {
			return unlisted, did, nil
		}
	}
	return unlisted, dids[len(dids)-1], nil
}
