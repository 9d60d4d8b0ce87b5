package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The Colindex-Backfill state of a listReposByCollection page (xrpc.go): whether every asked
// collection's backfill here is complete (or was never run), asked before the page's read and
// checked after it, answered from memory or one batched query.

// collectionsComplete says, before a read, whether every collection is complete, or else
// whether every one that is not was never backfilled here (none); it returns the completion
// each complete one was seen with, for sameCompletion after the read. When that cannot be
// told (no backfill wired, database down) the answer is neither: a downstream then waits
// rather than risk missing DIDs.
func (s *Server) collectionsComplete(r *http.Request, collections []string, epoch int64) (seen map[string]time.Time, complete, none bool) {
	if s.Backfill == nil {
		return nil, false, false
	}
	if seen, ok := s.complete.cached(collections, epoch); ok {
		return seen, true, false
	}
	seen, known, err := s.complete.lookup(r.Context(), s.Pool, s.Backfill.CompletionEpoch, collections)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "list repos: backfill state unknown, answering incomplete",
			"collections", collections, "error", err)
		return nil, false, false
	}
	if len(seen) == len(collections) {
		return seen, true, false
	}
	return seen, false, neverBackfilled(collections, seen, known)
}

// neverBackfilled says whether every collection that is not complete has no progress row.
func neverBackfilled(collections []string, complete map[string]time.Time, known map[string]bool) bool {
	for _, c := range collections {
		if _, ok := complete[c]; !ok && known[c] {
			return false
		}
	}
	return true
}

// sameCompletion asks again, after a read during which the completion epoch moved, and says whether every collection is still
// complete with the same completed_at it was seen with before. A reset sets completed_at
// anew (with resetting_since) and its end clears it, as does a restart; a collection whose
// completed_at did not change stayed complete across the read, however old the first
// sighting (completeChecker caches it).
//
// With none, the collections that were not complete before must still have no progress row.
func (s *Server) sameCompletion(r *http.Request, collections []string, before map[string]time.Time, none bool) bool {
	after, known, err := s.complete.lookup(r.Context(), s.Pool, s.Backfill.CompletionEpoch, collections)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "list repos: backfill state unknown, answering incomplete",
			"collections", collections, "error", err)
		return false
	}
	for _, c := range collections {
		t, wasComplete := before[c]
		if !wasComplete && none {
			if known[c] {
				return false
			}
			continue
		}
		if now, ok := after[c]; !ok || !now.Equal(t) {
			return false
		}
	}
	return true
}

// completeChecker answers "which of these collections are complete, since when?" for
// listReposByCollection without a Postgres round trip per question: concurrent questions
// share one query, and answers are remembered.
//
// A lookup joins the next batch; a batch's query starts only after the batch is closed to
// newcomers, so it starts after every member asked (after the member's read, for
// sameCompletion), exactly as if each had queried alone. One batch runs at a time.
//
// The definition of complete is jobs.CollectionComplete's: a progress row with completed_at
// set and no reset under way; one query asks it for a whole batch.
type completeChecker struct {
	mu      sync.Mutex
	next    *completeBatch
	running bool
	// seen holds the collections last seen complete, with their completed_at, as queried
	// under completion epoch seenEpoch; under a later epoch it is not trusted. It holds only
	// names that have a progress row, so it cannot grow past the table.
	seen      map[string]time.Time
	seenEpoch int64
}

type completeBatch struct {
	collections map[string]struct{}
	done        chan struct{}
	complete    map[string]time.Time
	known       map[string]bool // has a progress row
	err         error
}

// completeQuery returns every asked collection's row: complete when completed_at is set and
// no reset is under way.
const completeQuery = `SELECT collection, completed_at, completed_at IS NOT NULL AND resetting_since IS NULL
FROM backfill_progress WHERE collection = ANY($1)`

// cached answers from memory when every collection was last seen complete: such an answer
// is usable at any age, since sameCompletion checks it after the read. An incomplete one is
// never reused: a collection that just completed must say so on its next page.
func (c *completeChecker) cached(collections []string, epoch int64) (seen map[string]time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seenEpoch != epoch {
		return nil, false
	}
	seen = make(map[string]time.Time, len(collections))
	for _, coll := range collections {
		at, found := c.seen[coll]
		if !found {
			return nil, false
		}
		seen[coll] = at
	}
	return seen, true
}

// lookup returns the complete collections among collections with their completed_at, and
// which have a progress row at all, from a query that starts after this call.
func (c *completeChecker) lookup(ctx context.Context, pool *pgxpool.Pool, epoch func() int64, collections []string) (map[string]time.Time, map[string]bool, error) {
	c.mu.Lock()
	b := c.next
	if b == nil {
		b = &completeBatch{collections: map[string]struct{}{}, done: make(chan struct{})}
		c.next = b
	}
	for _, coll := range collections {
		b.collections[coll] = struct{}{}
	}
	if !c.running {
		c.running = true
		go c.run(pool, epoch)
	}
	c.mu.Unlock()
	select {
	case <-b.done:
		if b.err != nil {
			return nil, nil, b.err
		}
		// The batch answered for every member's collections: keep this caller's only, or a
		// collection another request asked about counts toward this one's "complete" (seen
		// as a union with an incomplete member paged as complete, under concurrent requests).
		complete := make(map[string]time.Time, len(collections))
		known := make(map[string]bool, len(collections))
		for _, coll := range collections {
			if at, ok := b.complete[coll]; ok {
				complete[coll] = at
			}
			known[coll] = b.known[coll]
		}
		return complete, known, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// run queries batch after batch until no one is waiting.
func (c *completeChecker) run(pool *pgxpool.Pool, epoch func() int64) {
	for {
		c.mu.Lock()
		b := c.next
		c.next = nil
		if b == nil {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		e := epoch() // read before the query: its answer is good for this epoch at most
		b.complete, b.known, b.err = queryComplete(pool, slices.Collect(maps.Keys(b.collections)))
		if b.err == nil {
			c.remember(b, e)
		}
		close(b.done)
	}
}

func (c *completeChecker) remember(b *completeBatch, epoch int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil || epoch != c.seenEpoch {
		if epoch < c.seenEpoch {
			return // an answer older than the one kept
		}
		c.seen, c.seenEpoch = map[string]time.Time{}, epoch
	}
	for coll := range b.collections {
		if at, ok := b.complete[coll]; ok {
			c.seen[coll] = at
		} else {
			delete(c.seen, coll)
		}
	}
}

func queryComplete(pool *pgxpool.Pool, collections []string) (map[string]time.Time, map[string]bool, error) {
	// Not the request's context: other requests wait on the same query.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, completeQuery, collections)
	if err != nil {
		return nil, nil, fmt.Errorf("backfill state: %w", err)
	}
	out := make(map[string]time.Time, len(collections))
	known := make(map[string]bool, len(collections))
	var coll string
	var at *time.Time
	var complete bool
	_, err = pgx.ForEachRow(rows, []any{&coll, &at, &complete}, func() error {
		known[coll] = true
		if complete {
			out[coll] = *at
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("backfill state: %w", err)
	}
	return out, known, nil
}
