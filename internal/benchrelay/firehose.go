package benchrelay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/internal/fakerelay"
)

// Firehose is a live stream beside the data set, for trying colindex's follower locally
// (cmd/benchrelay -firehose-rate): real sync-1.1 #commit frames, signed and carrying their MST
// blocks (internal/fakerelay builds them), by accounts of the data set, at a steady rate.
// Accounts create records across the collections, the big ones most, delete some of their
// own (at times the last of a collection, which the follower removes on the commit's proof),
// are taken down and come back, and now and then are deleted. The same server answers the
// relay's account list, which sweeps ask: it knows every account of the data set, active
// unless the stream said otherwise; listRepos lists the active ones, getRepoStatus tells
// each one's status.
//
// The accounts' repositories hold only what the stream created: the stream is their truth,
// and a pair the data set's pages still list after its last record's delete is one the
// follower keeps out, as it keeps out what bsky.network's pages still list.
type Firehose struct {
	relay *fakerelay.Relay
	data  *Dataset
	rng   *rand.Rand
	accts []*fakerelay.Account
	owned [][]fakerelay.Op // each account's live records
	state []accountState
	clock *syntax.TIDClock // record keys
	n     int              // events so far
}

type accountState int

const (
	accountActive accountState = iota
	accountTakendown
	accountDeleted
)

// Shares of the events that are not creates, drawn in this order.
const (
	shareTakedowns   = 0.02
	shareReturns     = 0.02
	shareDeletions   = 0.002
	shareRecordDrops = 0.2
)

// firehoseRetained is how many events the relay keeps for replay (its retention window): a
// follower stopped for longer resumes with #info OutdatedCursor and a gap, as from a relay.
const firehoseRetained = 200_000

// NewFirehose prepares the stream of the first accounts of d (at most its universe), and
// lists every account of d as the relay's.
func NewFirehose(d *Dataset, accounts int) (*Firehose, error) {
	accounts = min(accounts, int(d.Universe))
	f := &Firehose{relay: fakerelay.Unstarted(), data: d, rng: rand.New(rand.NewPCG(7, 11)),
		accts: make([]*fakerelay.Account, accounts), owned: make([][]fakerelay.Op, accounts),
		state: make([]accountState, accounts), clock: syntax.NewTIDClock(0)}
	for i := range f.accts {
		a, err := fakerelay.NewAccount(string(d.AppendDID(nil, uint64(i))))
		if err != nil {
			return nil, err
		}
		f.accts[i] = a
	}
	rev := syntax.NewTIDNow(0).String()
	for acct := range d.Universe {
		f.relay.HoldRepo(string(d.AppendDID(nil, acct)), rev)
	}
	return f, nil
}

// Handler serves subscribeRepos (the live tail without a cursor, a replay from one),
// listRepos and getRepoStatus.
func (f *Firehose) Handler() http.Handler { return f.relay }

// Run appends events at perSecond until ctx ends.
func (f *Firehose) Run(ctx context.Context, perSecond float64) error {
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
	f.n++
	if f.n > firehoseRetained {
		f.relay.Trim(int64(f.n - firehoseRetained))
	}
	r := f.rng.Float64()
	switch {
	case r < shareTakedowns:
		if i, ok := f.pick(accountActive); ok {
			f.state[i] = accountTakendown
			_, err := f.relay.AccountStatus(f.accts[i].DID, false, "takendown")
			return err
		}
	case r < shareTakedowns+shareReturns:
		if i, ok := f.pick(accountTakendown); ok {
			f.state[i] = accountActive
			_, err := f.relay.AccountStatus(f.accts[i].DID, true, "")
			return err
		}
	case r < shareTakedowns+shareReturns+shareDeletions:
		if i, ok := f.pick(accountActive); ok {
			f.state[i] = accountDeleted
			_, err := f.relay.AccountStatus(f.accts[i].DID, false, "deleted")
			return err
		}
	case r < shareTakedowns+shareReturns+shareDeletions+shareRecordDrops:
		if i, ok := f.pick(accountActive); ok && len(f.owned[i]) > 0 {
			j := f.rng.IntN(len(f.owned[i]))
			op := f.owned[i][j]
			f.owned[i] = append(f.owned[i][:j], f.owned[i][j+1:]...)
			_, err := f.relay.Commit(f.accts[i], fakerelay.Delete(op.Collection, op.Rkey))
			return err
		}
	}
	i, ok := f.pick(accountActive)
	if !ok {
		return fmt.Errorf("benchrelay: no active account left to write")
	}
	// The big collections take most of the writes, as on the network.
	u := f.rng.Float64()
	coll := f.data.Names[min(int(float64(len(f.data.Names))*u*u), len(f.data.Names)-1)]
	op := fakerelay.Create(coll, f.clock.Next().String())
	f.owned[i] = append(f.owned[i], op)
	_, err := f.relay.Commit(f.accts[i], op)
	return err
}

// pick draws an account in state st (a few tries: the draw is uniform over all of them).
func (f *Firehose) pick(st accountState) (int, bool) {
	for range 64 {
		if i := f.rng.IntN(len(f.accts)); f.state[i] == st {
			return i, true
		}
	}
	return 0, false
}
