package rocksindex

import (
	"errors"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// A PDS check (jobs/verify.go) asks an account's PDS, then writes what the answer means. The
// answer is of the moment the PDS gave it; by the time the check writes, the stream may have
// applied a newer event of the account (a create that put the pair back, a removal, a status
// change), and the older conclusion must not overwrite it. So every write of the account's
// pairs or status moves a stamp, a check reads the stamp before it asks (StampOf), and its
// write goes through only if the stamp has not moved since (the *Since methods), else
// ErrChanged and the check asks again. An add moves the stamp even when it writes nothing
// (the pair was there): that is the create the check's removal would otherwise undo.
//
// Stamps are moved and compared under acct.mu (an add shared, everything else exclusive), so
// a write either lands before the comparison, which sees it, or after the guarded write, as
// it would after any other. They live in a fixed table indexed by a hash of the DID: two
// accounts in one slot only cost a check a second question. Memory is enough: a check and its
// write run in one process, the one that serves the index, and a check cut short by a crash is
// retried from the start.

const stampSlots = 1 << 16 // 512 KB

type stamps struct{ slots [stampSlots]atomic.Uint64 }

func (s *stamps) of(did string) *atomic.Uint64 {
	return &s.slots[xxhash.Sum64String(did)%stampSlots]
}

// move marks a write of did's pairs or status. Callers hold acct.mu.
func (s *stamps) move(did string) { s.of(did).Add(1) }

// Since is an account's stamp as a check read it before asking the account's PDS.
type Since struct {
	DID   string
	stamp uint64
}

// ErrChanged says that the account's pairs or status were written after its Since was read:
// the check's answer may be older than the index, so ask again.
var ErrChanged = errors.New("the account changed in the index after its PDS was asked")

// StampOf reads did's stamp, before its PDS is asked.
func (ix *Index) StampOf(did string) Since {
	return Since{DID: did, stamp: ix.stamps.of(did).Load()}
}

// unchanged returns ErrChanged if since's account was written after since was read (nil
// since: an unguarded write). Callers hold acct.mu.
func (ix *Index) unchanged(since *Since) error {
	if since != nil && ix.stamps.of(since.DID).Load() != since.stamp {
		return ErrChanged
	}
	return nil
}

// carry moves since past the guarded write just made, so that the check's next write (a
// reconciliation's adds after its removals) is compared with the index as the check left it.
// Callers hold acct.mu exclusively, so no other write moved the stamp in between.
func (ix *Index) carry(since *Since) {
	if since != nil {
		since.stamp = ix.stamps.of(since.DID).Load()
	}
}

// The *Since writes are synced before they return, unlike the stream's (whose cursor waits
// for its own sync): River marks the check done as soon as it returns, and a power cut must
// not lose what it concluded.

// AddPairsSince is AddPairs for a check: ErrChanged, and nothing written, if since's account
// was written after since was read.
func (ix *Index) AddPairsSince(pairs []Pair, since *Since) (int, error) {
	n, err := ix.addPairs(pairs, since)
	return n, ix.syncAfter(err)
}

// RemovePairsSince is RemovePairs for a check (the pairs are since's account's): ErrChanged,
// and nothing removed, if the account was written after since was read.
func (ix *Index) RemovePairsSince(pairs []Pair, since *Since) (int, error) {
	n, err := ix.removePairs(pairs, since)
	return n, ix.syncAfter(err)
}

// SetAccountStatusSince is SetAccountStatus for a check: ErrChanged, and nothing written, if
// since's account was written after since was read.
func (ix *Index) SetAccountStatusSince(status string, since *Since) error {
	return ix.syncAfter(ix.setAccountStatus(since.DID, status, since))
}

// RemoveAccountSince is RemoveAccount for a check: ErrChanged, and nothing removed, if
// since's account was written after since was read.
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
