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

// StatusOf is the status the index keeps for an account as the network states it (an
// #account event, a relay's listRepos or getRepoStatus): "" when active, else its status, or
// "inactive" when none is named (not active is still not active).
func StatusOf(active bool, status string) string {
	switch {
	case active:
		return ""
	case status != "":
		return status
	default:
		return "inactive"
	}
}

// accounts is the account-status side of the index: the acct family and the lock that makes
// a removal and an add exclusive of each other.
type accounts struct {
	cf *grocksdb.ColumnFamilyHandle
	// mu is held shared by every add (a backfill page, a stream commit) across its status
	// check and its write, and exclusively by RemoveAccount across its status write and its
	// pair deletes (and by SetAccountStatus and RemovePairs, whose counts move with them). So an add either finishes before a removal (whose cbr scan then sees and
	// removes its pairs) or starts after it (and sees "deleted"): a page fetched before the
	// removal can never put a removed pair back.
	mu sync.RWMutex
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

// statuses returns the stored status of each DID ("" for active). Callers hold acct.mu.
func (ix *Index) statuses(dids []string) ([]string, error) {
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
	out := make([]string, len(dids))
	for i, v := range vals {
		if v.Exists() {
			out[i] = string(v.Data())
		}
	}
	return out, nil
}

// rbcExists reports, for each DID, whether its rbc key with collection is in the index.
func (ix *Index) rbcExists(collection string, dids []string) ([]bool, error) {
	if len(dids) == 0 {
		return nil, nil
	}
	keys := make([][]byte, len(dids))
	for i, d := range dids {
		keys[i] = rbcKey(collection, d)
	}
	vals, err := ix.db.MultiGetCF(ix.read, ix.rbc, keys...)
	if err != nil {
		return nil, fmt.Errorf("look up %d DIDs of %s: %w", len(dids), collection, err)
	}
	defer vals.Destroy()
	out := make([]bool, len(dids))
	for i, v := range vals {
		out[i] = v.Exists()
	}
	return out, nil
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
// many it wrote (new or repaired). Pairs of deleted accounts are dropped. It costs at most
// four RocksDB calls however many pairs: one read of the accounts' statuses, one of the pairs'
// rbc keys and tombstones, one of the cbr keys of the pairs whose rbc key is there (most
// commits touch a collection the account already has, and reading is cheaper than writing the
// same keys again), and one write of what is missing with the counts it moves. Both sides must
// be there to skip a pair, so a half-written one (a reset between its cbr deletes and its rbc
// range delete) is made whole; it moves the count only if its rbc key was missing. Reading cbr
// only where rbc is there halved the cost of new pairs into a 4M-pair index (50 to 25 µs a
// pair, BenchmarkAddPairsStream).
// The write is not synced: the caller syncs with SyncWAL before it records progress past it.
func (ix *Index) AddPairs(pairs []Pair) (int, error) { return ix.addPairs(pairs, nil) }

func (ix *Index) addPairs(pairs []Pair, since *Since) (int, error) {
	if len(pairs) == 0 {
		return 0, nil
	}
	ix.acct.mu.RLock()
	defer ix.acct.mu.RUnlock()
	if err := ix.pairsUnchanged(pairs, since); err != nil {
		return 0, err
	}
	ix.stamps.wrote(pairs) // every pair, those found there included (since.go)
	seen := make(map[Pair]struct{}, len(pairs))
	var dids []string
	didSeen := map[string]struct{}{}
	uniq := pairs[:0:0]
	for _, p := range ix.present.missing(pairs) {
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
	sts, err := ix.statuses(dids)
	if err != nil {
		return 0, err
	}
	status := make(map[string]string, len(dids))
	for i, d := range dids {
		status[d] = sts[i]
	}
	kept := uniq[:0]
	colls := make([]string, 0, 8)
	for _, p := range uniq {
		if status[p.DID] != StatusDeleted {
			kept = append(kept, p)
			colls = append(colls, p.Collection)
		}
	}
	uniq = kept
	if len(uniq) == 0 {
		return 0, nil
	}
	unlock := ix.counts.lock(colls...)
	defer unlock()
	// Per pair: its rbc key and its tombstone (the same key, in gone). Its cbr key is read
	// only where the rbc key is there: a new pair, the common case, is absent from both, and
	// the pair families carry no bloom filters (memory), so each absent key costs a search of
	// every level.
	cfs := make(grocksdb.ColumnFamilyHandles, 0, 2*len(uniq))
	keys := make([][]byte, 0, 2*len(uniq))
	for _, p := range uniq {
		rk := rbcKey(p.Collection, p.DID)
		cfs = append(cfs, ix.rbc, ix.gone)
		keys = append(keys, rk, rk)
	}
	vals, err := ix.db.MultiGetCFMultiCF(ix.read, cfs, keys)
	if err != nil {
		return 0, fmt.Errorf("look up %d pairs: %w", len(uniq), err)
	}
	defer vals.Destroy()
	whole, err := ix.cbrWhere(uniq, func(i int) bool { return vals[2*i].Exists() })
	if err != nil {
		return 0, err
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	deltas := map[string]int64{}
	added := 0
	var written []Pair
	for i, p := range uniq {
		rbc, gone := vals[2*i].Exists(), vals[2*i+1].Exists()
		if gone {
			// A create after the stream removed the pair: it exists again (removal.go).
			// Only a tombstone that is there is deleted: a delete per add would fill the
			// family with deletes of nothing.
			wb.DeleteCF(ix.gone, keys[2*i+1])
		}
		if whole[i] {
			continue
		}
		wb.PutCF(ix.rbc, keys[2*i], nil)
		wb.PutCF(ix.cbr, cbrKey(p.DID, p.Collection), nil)
		written = append(written, p)
		added++
		if !rbc && status[p.DID] == "" {
			deltas[p.Collection]++
		}
	}
	ix.resets.note(written)
	if wb.Count() > 0 {
		commit := ix.counts.stage(wb, deltas)
		if err := ix.db.Write(ix.acct.noSync, wb); err != nil {
			return 0, fmt.Errorf("index %d pairs: %w", added, err)
		}
		commit()
	}
	ix.present.add(uniq) // every one is whole now: found so, or just written
	return added, nil
}

// cbrWhere says, for each pair where has(i), whether its cbr key is there too: the pair is
// whole. The others are not looked up, and are not whole.
func (ix *Index) cbrWhere(pairs []Pair, has func(i int) bool) ([]bool, error) {
	whole := make([]bool, len(pairs))
	var at []int
	var keys [][]byte
	for i, p := range pairs {
		if has(i) {
			at = append(at, i)
			keys = append(keys, cbrKey(p.DID, p.Collection))
		}
	}
	if len(keys) == 0 {
		return whole, nil
	}
	vals, err := ix.db.MultiGetCF(ix.read, ix.cbr, keys...)
	if err != nil {
		return nil, fmt.Errorf("look up %d pairs' cbr keys: %w", len(keys), err)
	}
	defer vals.Destroy()
	for j, i := range at {
		whole[i] = vals[j].Exists()
	}
	return whole, nil
}

// RemoveAccount marks did deleted (final) and removes every pair it has, found through cbr,
// in one unsynced batch with the counts it moves. It returns the pairs removed and whether
// the account was already deleted (a replayed event).
func (ix *Index) RemoveAccount(did string) (removed int, already bool, err error) {
	return ix.removeAccount(did, nil)
}

func (ix *Index) removeAccount(did string, since *Since) (removed int, already bool, err error) {
	ix.acct.mu.Lock()
	defer ix.acct.mu.Unlock()
	if err := ix.statusUnchanged(since); err != nil {
		return 0, false, err
	}
	return ix.removeAccountLocked(did)
}

// removeAccountLocked is removeAccount's write. Callers hold acct.mu exclusively.
func (ix *Index) removeAccountLocked(did string) (removed int, already bool, err error) {
	ix.stamps.wroteStatus(did)
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
		ix.present.forget(Pair{Collection: coll, DID: did})
	}
	wb.PutCF(ix.acct.cf, []byte(did), []byte(StatusDeleted))
	var commit func()
	if st == "" { // an inactive account's pairs were not counted
		if commit, err = ix.stageListed(wb, did, colls, -1); err != nil {
			return 0, false, err
		}
	}
	if err := ix.db.Write(ix.acct.noSync, wb); err != nil {
		return 0, false, fmt.Errorf("remove account %s: %w", did, err)
	}
	if commit != nil {
		commit()
	}
	return len(colls), st == StatusDeleted, nil
}

// stageListed stages a change of delta in the count of each collection of colls whose rbc
// key with did exists (an account becoming listed or unlisted). Callers hold acct.mu
// exclusively.
func (ix *Index) stageListed(wb *grocksdb.WriteBatch, did string, colls []string, delta int64) (func(), error) {
	deltas := make(map[string]int64, len(colls))
	for _, coll := range colls {
		ok, err := ix.rbcExists(coll, []string{did})
		if err != nil {
			return nil, err
		}
		if ok[0] {
			deltas[coll] += delta
		}
	}
	return ix.counts.stage(wb, deltas), nil
}

// SetAccountStatus records a non-deleted status: "" (active) lists did again, anything else
// hides it from ListRepos (and its collections' counts) while keeping its pairs. A deleted
// account stays deleted. Unsynced.
func (ix *Index) SetAccountStatus(did, status string) error {
	return ix.setAccountStatus(did, status, nil)
}

func (ix *Index) setAccountStatus(did, status string, since *Since) error {
	if status == StatusDeleted {
		_, _, err := ix.removeAccount(did, since)
		return err
	}
	// Exclusive: the counts of every collection of did move with the status.
	ix.acct.mu.Lock()
	defer ix.acct.mu.Unlock()
	if err := ix.statusUnchanged(since); err != nil {
		return err
	}
	return ix.setAccountStatusLocked(did, status)
}

// setAccountStatusLocked is setAccountStatus's write of a status other than deleted. Callers
// hold acct.mu exclusively.
func (ix *Index) setAccountStatusLocked(did, status string) error {
	ix.stamps.wroteStatus(did)
	cur, err := ix.AccountStatus(did)
	if err != nil || cur == StatusDeleted || cur == status {
		return err
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	if status == "" {
		wb.DeleteCF(ix.acct.cf, []byte(did))
	} else {
		wb.PutCF(ix.acct.cf, []byte(did), []byte(status))
	}
	commit := func() {}
	if (cur == "") != (status == "") {
		colls, err := ix.CollectionsOf(did)
		if err != nil {
			return err
		}
		delta := int64(1) // listed again
		if status != "" {
			delta = -1
		}
		if commit, err = ix.stageListed(wb, did, colls, delta); err != nil {
			return err
		}
	}
	if err := ix.db.Write(ix.acct.noSync, wb); err != nil {
		return fmt.Errorf("set status of %s to %q: %w", did, status, err)
	}
	commit()
	return nil
}

// SyncWAL makes every write made so far durable, synced or not.
func (ix *Index) SyncWAL() error {
	if err := ix.db.FlushWAL(true); err != nil {
		return fmt.Errorf("sync index WAL: %w", err)
	}
	return nil
}
