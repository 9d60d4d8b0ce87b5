package benchrelay

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/internal/fakepds"
	"github.com/colindex/colindex/internal/fakerelay"
)

// Firehose is a live stream beside the data set, for trying colindex's follower locally
// (cmd/benchrelay -firehose-rate): real sync-1.1 #commit frames, signed and carrying their MST
// blocks (internal/fakerelay builds them), by accounts of the data set, at a steady rate.
// Accounts create records across the collections, the big ones most, delete some of their
// own (at times the last of a collection, which the follower removes on the commit's proof),
// are taken down and come back, and now and then are deleted; a new account takes a deleted
// one's place, so the stream runs for as long as it is left to. The same server answers the
// relay's account list, which sweeps ask: it knows every account of the data set, active
// unless the stream said otherwise; listRepos lists the active ones, getRepoStatus tells
// each one's status. The writing accounts have a PLC directory and a PDS of their own
// (Network), which answers the checks a follower makes of an account (listRecords,
// describeRepo) from the records the stream gave it.
//
// The accounts' repositories hold only what the stream created: the stream is their truth,
// and a pair the data set's pages still list after its last record's delete is one the
// follower keeps out, as it keeps out what bsky.network's pages still list.
type Firehose struct {
	relay *fakerelay.Relay
	pds   *fakepds.Server // the writing accounts' PLC directory and PDS
	data  *Dataset
	rng   *rand.Rand
	accts []*fakerelay.Account
	owned [][]fakerelay.Op // each account's live records
	// active and takendown hold the account slots in each state; a deleted account's slot
	// gets a new account at once.
	active, takendown []int
	clock             *syntax.TIDClock // record keys
	next              uint64           // the account number of the next new account
}

// Shares of the events that are not creates, drawn in this order.
const (
	shareTakedowns   = 0.02
	shareReturns     = 0.02
	shareDeletions   = 0.002
	shareRecordDrops = 0.2
)

const (
	// firehoseRetained is how many events the relay keeps for replay (its retention window,
	// 5 minutes at 100 a second): a follower stopped for longer resumes with #info
	// OutdatedCursor and a gap, as from a relay.
	firehoseRetained = 30_000
	// maxRecords caps an account's records: past it, it deletes one instead of creating, so
	// its repository, and the frames its commits carry, stay the same size however long the
	// stream runs.
	maxRecords = 40
)

// NewFirehose prepares the stream of accounts of d (at least one, at most its universe; which
// ones, and every random draw after, depend on seed), and lists every account of d as the
// relay's.
func NewFirehose(d *Dataset, accounts int, seed uint64) (*Firehose, error) {
	accounts = max(min(accounts, int(d.Universe)), 1)
	rng := rand.New(rand.NewPCG(seed, 11))
	f := &Firehose{relay: fakerelay.Unstarted(), pds: fakepds.Local(), data: d, rng: rng,
		accts: make([]*fakerelay.Account, accounts), owned: make([][]fakerelay.Op, accounts),
		// New accounts' numbers start past the data set's, at a place of their own per seed.
		clock: syntax.NewTIDClock(0), next: d.Universe + rng.Uint64N(1<<40)<<16}
	first := rng.Uint64N(d.Universe) // the writing accounts: a run of the data set's, from here
	for i := range f.accts {
		a, err := fakerelay.NewAccount(string(d.AppendDID(nil, (first+uint64(i))%d.Universe)))
		if err != nil {
			return nil, err
		}
		f.accts[i] = a
		f.active = append(f.active, i)
		f.pds.AddAccount(a.DID)
	}
	// The data set's repositories last changed long ago: a gap's sweep, which re-learns
	// from their PDS the accounts whose repo changed since the gap, asks about the writing
	// accounts only.
	rev := syntax.NewTIDFromTime(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), 0).String()
	for acct := range d.Universe {
		f.relay.HoldRepo(string(d.AppendDID(nil, acct)), rev)
	}
	return f, nil
}

// Accounts is how many accounts write to the stream.
func (f *Firehose) Accounts() int { return len(f.accts) }

// Handler serves subscribeRepos (the live tail without a cursor, a replay from one),
// listRepos and getRepoStatus.
func (f *Firehose) Handler() http.Handler { return f.relay }

// Network serves the writing accounts' PLC directory (GET /{did}) and their PDS
// (com.atproto.repo.listRecords and describeRepo), on one address, which their DID documents
// name as their PDS.
func (f *Firehose) Network() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/xrpc/") {
			f.pds.ServePDS(w, r)
			return
		}
		f.pds.ServePLC(w, r)
	})
}

// Run appends events at perSecond (at most a million) until ctx ends.
func (f *Firehose) Run(ctx context.Context, perSecond float64) error {
	if !(perSecond > 0 && perSecond <= 1e6) {
		return errors.New("benchrelay: a firehose rate is above 0 and at most 1,000,000 a second")
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := f.Next(); err != nil {
			return err
		}
	}
}

// Next appends one event.
func (f *Firehose) Next() error {
	if last := f.relay.LastSeq(); last > firehoseRetained {
		f.relay.Trim(last - firehoseRetained)
	}
	r := f.rng.Float64()
	switch {
	case len(f.active) == 0: // everyone taken down: one comes back
		return f.comeBack()
	case r < shareTakedowns:
		i := f.take(&f.active)
		f.takendown = append(f.takendown, i)
		f.pds.SetFault(f.accts[i].DID, fakepds.RepoTakendown)
		_, err := f.relay.AccountStatus(f.accts[i].DID, false, "takendown")
		return err
	case r < shareTakedowns+shareReturns:
		if len(f.takendown) > 0 {
			return f.comeBack()
		} // else a write or a record delete, below
	case r < shareTakedowns+shareReturns+shareDeletions:
		i := f.take(&f.active)
		f.pds.SetFault(f.accts[i].DID, fakepds.RepoNotFound)
		if _, err := f.relay.AccountStatus(f.accts[i].DID, false, "deleted"); err != nil {
			return err
		}
		// A new account takes the slot: its DID is past the data set's, so no page lists it.
		a, err := fakerelay.NewAccount(string(f.data.AppendDID(nil, f.next)))
		if err != nil {
			return err
		}
		f.next++
		f.pds.AddAccount(a.DID)
		f.accts[i], f.owned[i] = a, nil
		f.active = append(f.active, i)
		return nil
	}
	i := f.active[f.rng.IntN(len(f.active))]
	if n := len(f.owned[i]); n > 0 && (n >= maxRecords || r < shareTakedowns+shareReturns+shareDeletions+shareRecordDrops) {
		j := f.rng.IntN(n)
		op := f.owned[i][j]
		f.owned[i] = append(f.owned[i][:j], f.owned[i][j+1:]...)
		f.pds.SetRecords(f.accts[i].DID, op.Collection, f.records(i, op.Collection))
		_, err := f.relay.Commit(f.accts[i], fakerelay.Delete(op.Collection, op.Rkey))
		return err
	}
	// The big collections take most of the writes, as on the network.
	u := f.rng.Float64()
	coll := f.data.Names[min(int(float64(len(f.data.Names))*u*u), len(f.data.Names)-1)]
	op := fakerelay.Create(coll, f.clock.Next().String())
	f.owned[i] = append(f.owned[i], op)
	f.pds.SetRecords(f.accts[i].DID, coll, f.records(i, coll))
	_, err := f.relay.Commit(f.accts[i], op)
	return err
}

// records is how many records account slot i holds in coll.
func (f *Firehose) records(i int, coll string) int {
	n := 0
	for _, op := range f.owned[i] {
		if op.Collection == coll {
			n++
		}
	}
	return n
}

// comeBack makes a taken-down account active again.
func (f *Firehose) comeBack() error {
	i := f.take(&f.takendown)
	f.active = append(f.active, i)
	f.pds.SetFault(f.accts[i].DID, fakepds.NoFault)
	_, err := f.relay.AccountStatus(f.accts[i].DID, true, "")
	return err
}

// take removes a random slot from pool (not empty) and returns it.
func (f *Firehose) take(pool *[]int) int {
	p := *pool
	k := f.rng.IntN(len(p))
	i := p[k]
	p[k] = p[len(p)-1]
	*pool = p[:len(p)-1]
	return i
}
