package rocksindex

import (
	"errors"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// A PDS check (jobs/verify.go) asks an account's PDS, then writes what the answer means. The
// answer is of the moment the PDS gave it; by the time the check writes, the stream may have
// applied a newer event of the account (a create that put a pair back, a removal, a status
// change), and the older conclusion must not overwrite it. So the index keeps a write clock:
// every write of a pair records the clock's time in a slot for that pair and one for its
// account, every write of a status in the account's. A check reads the time before it asks
// (StampOf), and its write goes through only if nothing it would overwrite was written since
// (the *Since methods), else ErrChanged and the check asks again:
//   - a pair write (a removal, a reconciliation's adds) only if none of its pairs was;
//   - a status write (hidden, deleted) only if nothing of the account was: a commit applied
//     since says the account is alive (relays pass no commits of inactive accounts).
// An add records its time even when it writes nothing (the pair was there): that is the
// create the check's removal would otherwise undo.
//
// Pair writes are guarded per pair, not per account: a check about one collection does not
// wait out an account that keeps writing to another (a bot posting every second would
// otherwise never let a check of its likes finish), and a reconciliation's adds are not
// spoilt by its own removals, which are of other pairs. A write that took its time before the
// check read the clock and finished after reflects an event the PDS had already applied when
// it was asked, so it may pass.
//
// Times are recorded and compared under acct.mu (an add shared, everything else exclusive),
// so a write either lands before the comparison, which sees it, or after the guarded write, as
// it would after any other. The slots are a fixed table indexed by a hash: two pairs in one
// slot only cost a check a second question. Memory is enough: a check and its write run in
// one process, the one that serves the index, and a check cut short by a crash is retried
// from the start.

const stampSlots = 1 << 16 // 512 KB

type stamps struct {
	clock atomic.Uint64
	slots [stampSlots]atomic.Uint64 // the time of the last write that hashed here
}

func (s *stamps) pair(p Pair) *atomic.Uint64 {
	var h xxhash.Digest
	h.Reset()
	_, _ = h.WriteString(p.Collection)
	_, _ = h.WriteString("\x00")
	_, _ = h.WriteString(p.DID)
	return &s.slots[h.Sum64()%stampSlots]
}

func (s *stamps) account(did string) *atomic.Uint64 {
	return &s.slots[xxhash.Sum64String(did)%stampSlots] // a DID never holds the 0x00 of a pair's key
}

// tick is the time of a write about to be made. Callers hold acct.mu.
func (s *stamps) tick() uint64 { return s.clock.Add(1) }

// record raises a slot to t (concurrent adds may record in either order).
func record(slot *atomic.Uint64, t uint64) {
	for {
		old := slot.Load()
		if old >= t || slot.CompareAndSwap(old, t) {
			return
		}
	}
}

// wrote records a write of pairs, and of their accounts, at a new time. Callers hold acct.mu.
func (s *stamps) wrote(pairs []Pair) {
	t := s.tick()
	for _, p := range pairs {
		record(s.pair(p), t)
		record(s.account(p.DID), t)
	}
}

// wroteStatus records a write of did's status at a new time. Callers hold acct.mu.
func (s *stamps) wroteStatus(did string) { record(s.account(did), s.tick()) }

// Since is the index's write clock as a check read it before asking an account's PDS.
type Since struct {
	DID string
	at  uint64
}

// ErrChanged says that a pair or the status a check would write was written after its Since
// was read: the check's answer may be older than the index, so ask again.
var ErrChanged = errors.New("the index changed after the account's PDS was asked")

// StampOf reads the write clock for a check of did, before its PDS is asked.
func (ix *Index) StampOf(did string) Since {
	return Since{DID: did, at: ix.stamps.clock.Load()}
}

// pairsUnchanged returns ErrChanged if one of pairs was written after since was read (nil
// since: an unguarded write). Callers hold acct.mu.
func (ix *Index) pairsUnchanged(pairs []Pair, since *Since) error {
	if since == nil {
		return nil
	}
	for _, p := range pairs {
		if ix.stamps.pair(p).Load() > since.at {
			return ErrChanged
		}
	}
	return nil
}

// statusUnchanged returns ErrChanged if anything of since's account (a pair, its status) was
// written after since was read. Callers hold acct.mu.
func (ix *Index) statusUnchanged(since *Since) error {
	if since != nil && ix.stamps.account(since.DID).Load() > since.at {
		return ErrChanged
	}
	return nil
}

// The *Since writes are synced before they return, unlike the stream's (whose cursor waits
// for its own sync): River marks the check done as soon as it returns, and a power cut must
// not lose what it concluded.

// AddPairsSince is AddPairs for a check: ErrChanged, and nothing written, if one of pairs was
// written after since was read.
func (ix *Index) AddPairsSince(pairs []Pair, since *Since) (int, error) {
	n, err := ix.addPairs(pairs, since)
	return n, ix.syncAfter(err)
}

// RemovePairsSince is RemovePairs for a check: ErrChanged, and nothing removed, if one of pairs
// was written after since was read.
func (ix *Index) RemovePairsSince(pairs []Pair, since *Since) (int, error) {
	n, err := ix.removePairs(pairs, since)
	return n, ix.syncAfter(err)
}

// SetAccountStatusSince is SetAccountStatus for a check: ErrChanged, and nothing written, if
// anything of since's account was written after since was read.
func (ix *Index) SetAccountStatusSince(status string, since *Since) error {
	return ix.syncAfter(ix.setAccountStatus(since.DID, status, since))
}

// RemoveAccountSince is RemoveAccount for a check: ErrChanged, and nothing removed, if
// anything of since's account was written after since was read.
func (ix *Index) RemoveAccountSince(since *Since) (removed int, already bool, err error) {
	removed, already, err = ix.removeAccount(since.DID, since)
	return removed, already, ix.syncAfter(err)
}

// syncAfter syncs the WAL after a write that succeeded, and passes on the error of one that
// did not.
func (ix *Index) syncAfter(err error) error {
	if err != nil {
		return err
	}
	return ix.SyncWAL()
}

// For is the same reading of the write clock, for a check of another account: a sweep reads
// the clock once before it fetches a page of accounts.
func (s Since) For(did string) Since { return Since{DID: did, at: s.at} }

// ApplyStatusesSince applies a sweep's statuses (DID to status: "" lists the account again,
// StatusDeleted removes it, anything else hides it), each guarded as SetAccountStatusSince is
// by since, with one WAL sync for all. An account written after since keeps what was written
// (the stream's word is the newer) and is left out of applied. removed counts the pairs of the
// accounts removed.
//
// Every guard is read before any of the sweep's own writes, and the writes follow in the same
// hold of the account lock: the sweep's write of one account must not pass for a newer write
// of another that shares its stamp slot. The stream's adds wait meanwhile: 43–65 ms for a
// page of a thousand accounts all deleted, three pairs each, the worst case (BenchmarkSweepPage,
// which counts the WAL sync after the lock too).
func (ix *Index) ApplyStatusesSince(statuses map[string]string, since Since) (applied []string, removed int, err error) {
	applied, removed, err = ix.applyStatusesLocked(slices.Sorted(maps.Keys(statuses)), statuses, since)
	if err != nil {
		return applied, removed, err // unsynced: the sweep applies the page again
	}
	return applied, removed, ix.SyncWAL()
}

func (ix *Index) applyStatusesLocked(dids []string, statuses map[string]string, since Since) (applied []string, removed int, err error) {
	ix.acct.mu.Lock()
	defer ix.acct.mu.Unlock()
	var unchanged []string
	for _, did := range dids {
		s := since.For(did)
		if ix.statusUnchanged(&s) == nil {
			unchanged = append(unchanged, did)
		}
	}
	for _, did := range unchanged {
		if st := statuses[did]; st == StatusDeleted {
			n, _, err := ix.removeAccountLocked(did)
			if err != nil {
				return applied, removed, err
			}
			removed += n
		} else if err := ix.setAccountStatusLocked(did, st); err != nil {
			return applied, removed, err
		}
		applied = append(applied, did)
	}
	return applied, removed, nil
}
