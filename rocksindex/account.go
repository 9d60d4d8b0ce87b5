package rocksindex

import (
	"fmt"
	"sync"

	"github.com/linxGnu/grocksdb"
)

// cfAcct holds the accounts that are not active: key <did>, value its status ("deleted",
// "takendown", "suspended", "deactivated", …). An active account has no key, so the family
// stays as small as the set of inactive accounts.
const cfAcct = "acct"

// StatusDeleted is final: the account's pairs are gone and nothing may put them back.
const StatusDeleted = "deleted"

// accounts is the account-status side of the index: the acct family and the lock that makes
// a removal and an add exclusive of each other.
type accounts struct {
	cf *grocksdb.ColumnFamilyHandle
	// mu is held shared by every add (a backfill page, a stream commit) across its status
	// check and its write, and exclusively by RemoveAccount across its status write and its
	// pair deletes. So an add either finishes before a removal (whose cbr scan then sees and
	// removes its pairs) or starts after it (and sees "deleted"): a page fetched before the
	// removal can never put a removed pair back.
	mu sync.RWMutex
	// statusMu serialises the read-modify-write of a status (a later status never overwrites
	// "deleted").
	statusMu sync.Mutex
	// noSync writes go to the WAL without an fsync; the firehose calls SyncWAL before it
	// records a cursor past them.
	noSync *grocksdb.WriteOptions
}

func (a *accounts) init(cf *grocksdb.ColumnFamilyHandle) {
	a.cf = cf
	a.noSync = grocksdb.NewDefaultWriteOptions()
}

func (a *accounts) destroy() {
	if a.noSync != nil {
		a.noSync.Destroy()
	}
}

// AccountStatus returns the stored status of did: "" for an active (or unknown) account.
func (ix *Index) AccountStatus(did string) (string, error) {
	v, err := ix.db.GetCF(ix.read, ix.acct.cf, []byte(did))
	if err != nil {
		return "", fmt.Errorf("account status of %s: %w", did, err)
	}
	defer v.Free()
	return string(v.Data()), nil
}

// withoutDeleted drops the DIDs whose account is deleted. Callers hold acct.mu (shared).
func (ix *Index) withoutDeleted(dids []string) ([]string, error) {
	if len(dids) == 0 {
		return nil, nil
	}
	keys := make([][]byte, len(dids))
	for i, d := range dids {
		keys[i] = []byte(d)
	}
	vals, err := ix.db.MultiGetCF(ix.read, ix.acct.cf, keys...)
	if err != nil {
		return nil, fmt.Errorf("account statuses of %d DIDs: %w", len(dids), err)
	}
	defer vals.Destroy()
	kept := dids[:0:0]
	for i, v := range vals {
		if string(v.Data()) == StatusDeleted {
			continue
		}
		kept = append(kept, dids[i])
	}
	return kept, nil
}

// Pair is one (collection, DID) the stream says exists.
type Pair struct{ Collection, DID string }

// AddStream records that did has records in each of collections (the create and update ops
// of one #commit) and returns how many pairs were new.
func (ix *Index) AddStream(did string, collections []string) (int, error) {
	pairs := make([]Pair, len(collections))
	for i, c := range collections {
		pairs[i] = Pair{Collection: c, DID: did}
	}
	return ix.AddPairs(pairs)
}

// AddPairs records pairs (the create and update ops of a batch of commits) and returns how
// many were new. Pairs of deleted accounts are dropped. It costs three RocksDB calls however
// many pairs: one read of the accounts' statuses, one read of the pairs (most commits touch a
// collection the account already has, and reading is cheaper than writing the same keys
// again), and one write of what is missing. Both sides must be there to skip a pair, so a
// half-written one (a reset between its cbr deletes and its rbc range delete) is made whole.
// The write is not synced: the caller syncs with SyncWAL before it records progress past it.
func (ix *Index) AddPairs(pairs []Pair) (int, error) {
	if len(pairs) == 0 {
		return 0, nil
	}
	ix.acct.mu.RLock()
	defer ix.acct.mu.RUnlock()
	seen := make(map[Pair]struct{}, len(pairs))
	var dids []string
	didSeen := map[string]struct{}{}
	uniq := pairs[:0:0]
	for _, p := range pairs {
		if _, dup := seen[p]; dup {
			continue
		}
		seen[p] = struct{}{}
		uniq = append(uniq, p)
		if _, ok := didSeen[p.DID]; !ok {
			didSeen[p.DID] = struct{}{}
			dids = append(dids, p.DID)
		}
	}
	live, err := ix.withoutDeleted(dids)
	if err != nil {
		return 0, err
	}
	if len(live) < len(dids) {
		keep := make(map[string]struct{}, len(live))
		for _, d := range live {
			keep[d] = struct{}{}
		}
		kept := uniq[:0]
		for _, p := range uniq {
			if _, ok := keep[p.DID]; ok {
				kept = append(kept, p)
			}
		}
		uniq = kept
	}
	if len(uniq) == 0 {
		return 0, nil
	}
	cfs := make(grocksdb.ColumnFamilyHandles, 0, 2*len(uniq))
	keys := make([][]byte, 0, 2*len(uniq))
	for _, p := range uniq {
		cfs = append(cfs, ix.rbc, ix.cbr)
		keys = append(keys, rbcKey(p.Collection, p.DID), cbrKey(p.DID, p.Collection))
	}
	vals, err := ix.db.MultiGetCFMultiCF(ix.read, cfs, keys)
	if err != nil {
		return 0, fmt.Errorf("look up %d pairs: %w", len(uniq), err)
	}
	defer vals.Destroy()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	added := 0
	for i := range uniq {
		if vals[2*i].Exists() && vals[2*i+1].Exists() {
			continue
		}
		wb.PutCF(ix.rbc, keys[2*i], nil)
		wb.PutCF(ix.cbr, keys[2*i+1], nil)
		// A create after the stream removed the pair: it exists again (removal.go).
		wb.DeleteCF(ix.gone, keys[2*i])
		added++
	}
	if added == 0 {
		return 0, nil
	}
	if err := ix.db.Write(ix.acct.noSync, wb); err != nil {
		return 0, fmt.Errorf("index %d pairs: %w", added, err)
	}
	return added, nil
}

// RemoveAccount marks did deleted (final) and removes every pair it has, found through cbr,
// in one unsynced batch. It returns the pairs removed and whether the account was already
// deleted (a replayed event).
func (ix *Index) RemoveAccount(did string) (removed int, already bool, err error) {
	ix.acct.mu.Lock()
	defer ix.acct.mu.Unlock()
	st, err := ix.AccountStatus(did)
	if err != nil {
		return 0, false, err
	}
	colls, err := ix.CollectionsOf(did)
	if err != nil {
		return 0, false, err
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for _, coll := range colls {
		wb.DeleteCF(ix.rbc, rbcKey(coll, did))
		wb.DeleteCF(ix.cbr, cbrKey(did, coll))
	}
	wb.PutCF(ix.acct.cf, []byte(did), []byte(StatusDeleted))
	if err := ix.db.Write(ix.acct.noSync, wb); err != nil {
		return 0, false, fmt.Errorf("remove account %s: %w", did, err)
	}
	return len(colls), st == StatusDeleted, nil
}

// SetAccountStatus records a non-deleted status: "" (active) lists did again, anything else
// hides it from ListRepos while keeping its pairs. A deleted account stays deleted. Unsynced.
func (ix *Index) SetAccountStatus(did, status string) error {
	if status == StatusDeleted {
		_, _, err := ix.RemoveAccount(did)
		return err
	}
	ix.acct.mu.RLock()
	defer ix.acct.mu.RUnlock()
	ix.acct.statusMu.Lock()
	defer ix.acct.statusMu.Unlock()
	cur, err := ix.AccountStatus(did)
	if err != nil || cur == StatusDeleted || cur == status {
		return err
	}
	if status == "" {
		err = ix.db.DeleteCF(ix.acct.noSync, ix.acct.cf, []byte(did))
	} else {
		err = ix.db.PutCF(ix.acct.noSync, ix.acct.cf, []byte(did), []byte(status))
	}
	if err != nil {
		return fmt.Errorf("set status of %s to %q: %w", did, status, err)
	}
	return nil
}

// SyncWAL makes every write made so far durable, synced or not.
func (ix *Index) SyncWAL() error {
	if err := ix.db.FlushWAL(true); err != nil {
		return fmt.Errorf("sync index WAL: %w", err)
	}
	return nil
}
