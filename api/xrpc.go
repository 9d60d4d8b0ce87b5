package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

const (
	xrpcDefaultLimit = 500
	xrpcMaxLimit     = 10000
)

// listReposQuery is a validated listReposByCollection query.
type listReposQuery struct {
	collections []string // one or more, each once, in the order asked
	collection  string   // the first of them
	cursor      string
	limit       int
}

// parseListReposQuery validates a query. collection may be repeated (up to
// rocksindex.MaxUnion) to page the union of several collections. limit is clamped to
// 1..10000 like the network's servers do; a limit that is not an integer, a collection that
// is not an NSID and a cursor that is not a DID are errors (the message is safe to return).
func parseListReposQuery(q url.Values) (listReposQuery, error) {
	raw := q["collection"]
	if len(raw) == 0 || (len(raw) == 1 && raw[0] == "") {
		return listReposQuery{}, errors.New("collection is required")
	}
	if len(raw) > rocksindex.MaxUnion {
		return listReposQuery{}, fmt.Errorf("at most %d collections per request (%d given)", rocksindex.MaxUnion, len(raw))
	}
	out := listReposQuery{collections: make([]string, 0, len(raw)), limit: xrpcDefaultLimit}
	for _, c := range raw {
		coll, err := syntax.ParseNSID(c)
		if err != nil {
			return listReposQuery{}, errors.New("collection must be an NSID")
		}
		if !slices.Contains(out.collections, coll.String()) {
			out.collections = append(out.collections, coll.String())
		}
	}
	out.collection = out.collections[0]
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if errors.Is(err, strconv.ErrRange) {
			return listReposQuery{}, fmt.Errorf("limit is out of range (1 to %d)", xrpcMaxLimit)
		}
		if err != nil {
			return listReposQuery{}, errors.New("limit must be an integer")
		}
		out.limit = min(max(n, 1), xrpcMaxLimit)
	}
	if out.cursor = q.Get("cursor"); out.cursor != "" {
		if _, err := syntax.ParseDID(out.cursor); err != nil {
			return listReposQuery{}, errors.New("cursor must be a DID returned by this endpoint")
		}
	}
	return out, nil
}

// listReposByCollection serves com.atproto.sync.listReposByCollection from the index, in DID
// order. The cursor is the last DID returned, and the last page carries none. With several
// collections the page is their union, each DID once, and the cursor resumes the union.
//
// Every page says whether this colindex has finished the collection (source.BackfillHeader);
// a union is complete only when every collection in it is. A DID added behind a client's
// cursor never reaches that client, so a downstream colindex only accepts pages of a
// complete collection, whose DIDs no longer change.
func (s *Server) listReposByCollection(w http.ResponseWriter, r *http.Request) {
	q, err := parseListReposQuery(r.URL.Query())
	if err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	// Asked before the read, so a "complete" page was read after the last DID was written
	// (a page's DIDs are in the index before its collection can complete), and again after
	// it, so a reset that began during the read does not pass for complete. The first answer
	// may come from memory (completeChecker); the second is always a query that starts
	// after the read, and must find the same completed_at.
	var epoch int64
	if s.Backfill != nil {
		epoch = s.Backfill.CompletionEpoch()
	}
	before, complete := s.collectionsComplete(r, q.collections, epoch)
	// One more than asked: if it exists, there is a next page.
	dids, err := s.Index.ListReposUnion(q.collections, q.cursor, q.limit+1)
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "list repos", "collections", q.collections, "error", err)
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "index read failed")
		return
	}
	// The second question goes out now; the page is encoded while Postgres answers.
	var after chan bool
	if complete {
		after = make(chan bool, 1)
		if s.Backfill.CompletionEpoch() == epoch {
			// Nothing left "complete" during the read (jobs/completion.go): no query.
			after <- true
		} else {
			go func() { after <- s.sameCompletion(r, q.collections, before) }()
		}
	}
	cursor := ""
	if len(dids) > q.limit {
		dids = dids[:q.limit]
		cursor = dids[q.limit-1]
	}
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = appendListRepos((*buf)[:0], dids, cursor)
	state := source.BackfillIncomplete
	if complete && <-after {
		state = source.BackfillComplete
	}
	w.Header().Set(source.BackfillHeader, state)
	writeCacheable(w, r, *buf, state)
}

// appendListRepos appends the page's JSON, byte for byte what encoding/json wrote for
// {"repos":[{"did":…}],"cursor":…} (cursor omitted when empty, a trailing newline), without
// reflection or a struct per DID.
func appendListRepos(b []byte, dids []string, cursor string) []byte {
	b = append(b, `{"repos":[`...)
	for i, d := range dids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"did":`...)
		b = appendJSONString(b, d)
		b = append(b, '}')
	}
	b = append(b, ']')
	if cursor != "" {
		b = append(b, `,"cursor":`...)
		b = appendJSONString(b, cursor)
	}
	return append(b, "}\n"...)
}

// appendJSONString quotes s as encoding/json does. DIDs are printable ASCII without quotes
// or backslashes, so the fast path copies them; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// collectionsComplete says, before a read, whether every collection is complete; when it
// is, it returns the completion each was seen with, for sameCompletion after the read. When
// that cannot be told (no backfill wired, database down) the answer is no: a downstream then
// waits rather than risk missing DIDs.
func (s *Server) collectionsComplete(r *http.Request, collections []string, epoch int64) (map[string]time.Time, bool) {
	if s.Backfill == nil {
		return nil, false
	}
	if seen, ok := s.complete.cached(collections, epoch); ok {
		return seen, true
	}
	seen, err := s.complete.lookup(r.Context(), s.Pool, s.Backfill.CompletionEpoch, collections)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "list repos: backfill state unknown, answering incomplete",
			"collections", collections, "error", err)
		return nil, false
	}
	return seen, len(seen) == len(collections)
}

// sameCompletion asks again, after a read during which the completion epoch moved, and says whether every collection is still
// complete with the same completed_at it was seen with before. A reset sets completed_at
// anew (with resetting_since) and its end clears it, as does a restart; a collection whose
// completed_at did not change stayed complete across the read, however old the first
// sighting (completeChecker caches it).
func (s *Server) sameCompletion(r *http.Request, collections []string, before map[string]time.Time) bool {
	after, err := s.complete.lookup(r.Context(), s.Pool, s.Backfill.CompletionEpoch, collections)
	if err != nil {
		s.Logger.WarnContext(r.Context(), "list repos: backfill state unknown, answering incomplete",
			"collections", collections, "error", err)
		return false
	}
	for _, c := range collections {
		if t, ok := after[c]; !ok || !t.Equal(before[c]) {
			return false
		}
	}
	return true
}

// writeXRPCError answers in XRPC's error shape. Errors are never cached: the next request
// may well succeed.
func writeXRPCError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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
	err         error
}

const completeQuery = `SELECT collection, completed_at FROM backfill_progress
WHERE collection = ANY($1) AND completed_at IS NOT NULL AND resetting_since IS NULL`

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

// lookup returns the complete collections among collections with their completed_at, from a
// query that starts after this call.
func (c *completeChecker) lookup(ctx context.Context, pool *pgxpool.Pool, epoch func() int64, collections []string) (map[string]time.Time, error) {
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
		return b.complete, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
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
		b.complete, b.err = queryComplete(pool, slices.Collect(maps.Keys(b.collections)))
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

func queryComplete(pool *pgxpool.Pool, collections []string) (map[string]time.Time, error) {
	// Not the request's context: other requests wait on the same query.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, completeQuery, collections)
	if err != nil {
		return nil, fmt.Errorf("backfill state: %w", err)
	}
	out := make(map[string]time.Time, len(collections))
	var coll string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&coll, &at}, func() error {
		out[coll] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backfill state: %w", err)
	}
	return out, nil
}
