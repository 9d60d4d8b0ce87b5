package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/bluesky-social/indigo/events"

	"github.com/colindex/colindex/internal/fakerelay"
)

// streamLog is a generated stream: every event, in seq order, and what it adds.
type streamLog struct {
	events  []*events.XRPCStreamEvent
	adds    int // create and update ops: what collectiondir counts as pebble writes
	deletes int
	// newPairs is how many of the adds put a pair the index does not hold yet.
	newPairs int
}

// generateStream builds commits of one op each, from accounts over collections of
// network-like popularity (a few collections take most commits). With deleteEvery > 0, every
// deleteEvery-th commit deletes one of the account's records instead (often its last of
// that collection), so the proof of removal is exercised.
func generateStream(accounts, commits, collections, deleteEvery int) (*streamLog, error) {
	names := make([]string, collections)
	for i := range names {
		names[i] = fmt.Sprintf("com.stream.c%04d", i)
	}
	accts := make([]*fakerelay.Account, accounts)
	owned := make([][]fakerelay.Op, accounts) // each account's live records
	for i := range accts {
		a, err := fakerelay.NewAccount(fmt.Sprintf("did:plc:%024d", i))
		if err != nil {
			return nil, err
		}
		accts[i] = a
	}
	rng := rand.New(rand.NewPCG(1, 2))
	out := &streamLog{}
	type pair struct{ acct, coll string }
	held := map[pair]bool{}
	for i := range commits {
		n := rng.IntN(len(accts))
		op := fakerelay.Create(names[min(int(float64(collections)*rng.Float64()*rng.Float64()), collections-1)], fmt.Sprintf("r%09d", i))
		if deleteEvery > 0 && i%deleteEvery == deleteEvery-1 && len(owned[n]) > 0 {
			j := rng.IntN(len(owned[n]))
			op = fakerelay.Delete(owned[n][j].Collection, owned[n][j].Rkey)
			owned[n] = append(owned[n][:j], owned[n][j+1:]...)
			out.deletes++
		} else {
			owned[n] = append(owned[n], op)
			out.adds++
			if p := (pair{accts[n].DID, op.Collection}); !held[p] {
				held[p] = true
				out.newPairs++
			}
		}
		evt, err := accts[n].Commit(op)
		if err != nil {
			return nil, err
		}
		out.events = append(out.events, &events.XRPCStreamEvent{RepoCommit: evt})
	}
	return out, nil
}

// generateWarmStream is the live network's shape: commits (one create each, drawn as
// generateStream draws them) by accounts that already have a record in every collection they
// write to. warm creates those first records, one commit per pair; live is the measured part,
// in which no commit adds a pair. On bsky.network nearly every commit is like that: an
// account posting, liking or following again.
func generateWarmStream(accounts, commits, collections int) (warm, live *streamLog, err error) {
	names := make([]string, collections)
	for i := range names {
		names[i] = fmt.Sprintf("com.stream.c%04d", i)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type draw struct{ acct, coll int }
	draws := make([]draw, commits)
	for i := range draws {
		draws[i] = draw{rng.IntN(accounts), min(int(float64(collections)*rng.Float64()*rng.Float64()), collections-1)}
	}
	accts := make([]*fakerelay.Account, accounts)
	for i := range accts {
		if accts[i], err = fakerelay.NewAccount(fmt.Sprintf("did:plc:%024d", i)); err != nil {
			return nil, nil, err
		}
	}
	warm, live = &streamLog{}, &streamLog{}
	seen := map[draw]bool{}
	for i, d := range draws {
		if seen[d] {
			continue
		}
		seen[d] = true
		evt, err := accts[d.acct].Commit(fakerelay.Create(names[d.coll], fmt.Sprintf("w%09d", i)))
		if err != nil {
			return nil, nil, err
		}
		warm.events = append(warm.events, &events.XRPCStreamEvent{RepoCommit: evt})
		warm.adds++
	}
	for i, d := range draws {
		evt, err := accts[d.acct].Commit(fakerelay.Create(names[d.coll], fmt.Sprintf("r%09d", i)))
		if err != nil {
			return nil, nil, err
		}
		live.events = append(live.events, &events.XRPCStreamEvent{RepoCommit: evt})
		live.adds++
	}
	return warm, live, nil
}
