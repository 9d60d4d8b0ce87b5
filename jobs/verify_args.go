package jobs

import (
	"github.com/riverqueue/river"
)

// QueueVerify runs the checks with accounts' PDSes, apart from the page workers: a slow or
// failing PDS holds up other checks at most, never the backfill.
const QueueVerify = "verify"

// The River kinds of the checks with an account's PDS.
const (
	VerifyCollectionKind = "verify_collection"
	VerifyRepoKind       = "verify_repo"
)

const (
	// DefaultVerifyMaxAttempts with verifyRetryCap rides out a PDS outage of about an hour
	// and a half; then the job is discarded and the index keeps what it had.
	DefaultVerifyMaxAttempts = 15
	// DefaultVerifyWorkers is how many checks run at once: each mostly waits on a PDS.
	DefaultVerifyWorkers = 4
)

// VerifyCollectionArgs asks the account's PDS whether DID still has any record in
// Collection, after a delete the commit's own blocks could not settle.
//
// After is 0 for the check a delete asks for. While that check is already running, its
// answer may predate the delete, so the delete gets a second check, After set to the
// running job's ID: a different unique key, so it queues behind the running one, and later
// deletes dedupe against it.
type VerifyCollectionArgs struct {
	DID        string `json:"did" river:"unique"`
	Collection string `json:"collection" river:"unique"`
	After      int64  `json:"after,omitempty" river:"unique"`
}

func (VerifyCollectionArgs) Kind() string { return VerifyCollectionKind }

func (VerifyCollectionArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueueVerify,
		MaxAttempts: DefaultVerifyMaxAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// VerifyRepoArgs re-learns an account's collections from its PDS after a #sync (the repo
// was reset): After as in VerifyCollectionArgs.
type VerifyRepoArgs struct {
	DID   string `json:"did" river:"unique"`
	After int64  `json:"after,omitempty" river:"unique"`
}

func (VerifyRepoArgs) Kind() string { return VerifyRepoKind }

func (VerifyRepoArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       QueueVerify,
		MaxAttempts: DefaultVerifyMaxAttempts,
		UniqueOpts:  river.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}
