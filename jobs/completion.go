package jobs

// The readers of listReposByCollection say whether each page comes from a collection whose
// backfill is complete (the Colindex-Backfill header; a downstream colindex trusts only
// complete pages). Asking Postgres before and after every page cost more than the page's own
// read. Instead, every transaction that takes a collection out of "complete" (a reset's first
// step, a move that restarts collections) moves this process's completion epoch once before
// it commits and once after: a reader that sees the same epoch before and after its read knows
// no collection left "complete" meanwhile, and an answer cached under an older epoch is not
// trusted. One process serves the index (the index lock), and these transactions run in it.

// CompletionEpoch is the process's completion epoch (see above).
func (b *Backfill) CompletionEpoch() int64 { return b.completion.Load() }

// leavingComplete wraps commit, a transaction that may take collections out of "complete".
func (b *Backfill) leavingComplete(commit func() error) error {
	b.completion.Add(1)
	defer b.completion.Add(1)
	return commit()
}
