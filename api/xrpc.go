package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
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
// 1..source.MaxLimit like the network's servers do; a limit that is not an integer, a collection that
// is not an NSID and a cursor that is not a DID are errors (the message is safe to return).
func parseListReposQuery(q url.Values) (listReposQuery, error) {
	raw := q["collection"]
	if len(raw) == 0 || (len(raw) == 1 && raw[0] == "") {
		return listReposQuery{}, errors.New("collection is required")
	}
	out := listReposQuery{collections: make([]string, 0, min(len(raw), rocksindex.MaxUnion))}
	if err := distinctNSIDs(raw, rocksindex.MaxUnion, &out.collections); err != nil {
		return listReposQuery{}, err
	}
	out.collection = out.collections[0]
	var err error
	if out.limit, err = parseLimit(q.Get("limit"), source.DefaultLimit, source.MaxLimit); err != nil {
		return listReposQuery{}, err
	}
	if out.cursor = q.Get("cursor"); out.cursor != "" {
		if _, err := syntax.ParseDID(out.cursor); err != nil {
			return listReposQuery{}, errors.New("cursor must be a DID returned by this endpoint")
		}
	}
	return out, nil
}

// distinctNSIDs appends to out each value of raw once, in the order given, each checked to be
// an NSID; more than most distinct ones is an error, found as soon as the one too many is met
// (the same one repeated asks for nothing more, and a query of a thousand names costs no more
// than its first most+1).
func distinctNSIDs(raw []string, most int, out *[]string) error {
	for _, c := range raw {
		if slices.Contains(*out, c) {
			continue
		}
		if _, err := syntax.ParseNSID(c); err != nil {
			return errors.New("collection must be an NSID")
		}
		if len(*out) == most {
			return fmt.Errorf("at most %d distinct collections per request", most)
		}
		*out = append(*out, c)
	}
	return nil
}

// parseLimit reads a limit parameter: def when absent, clamped to 1..most as the network's
// servers clamp theirs; one that is not an integer, or too long for one, is an error.
func parseLimit(raw string, def, most int) (int, error) {
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("limit is out of range (1 to %d)", most)
	}
	if err != nil {
		return 0, errors.New("limit must be an integer")
	}
	return min(max(n, 1), most), nil
}

// readQuery parses the request's query string strictly: a malformed escape or a semicolon is
// a 400, where url.URL.Query would drop the parameter and answer as if it had not been sent
// (a broken cursor would restart the walk from the first page).
func readQuery(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeXRPCError(w, http.StatusBadRequest, "InvalidRequest", "malformed query string: "+err.Error())
		return nil, false
	}
	return q, true
}

// listReposByCollection serves com.atproto.sync.listReposByCollection from the index, in DID
// order. The cursor is the last DID returned, and the last page carries none. With several
// collections the page is their union, each DID once, and the cursor resumes the union.
//
// Every page says whether this colindex has finished the collection (source.BackfillHeader):
// complete, incomplete, or none when it never backfilled it (its DIDs come from the stream
// alone); a union is complete only when every collection in it is, and none when the rest are
// complete. A DID added behind a client's cursor never reaches that client, so a downstream
// colindex only accepts pages of a complete collection, whose DIDs no longer change, and a
// replica also those of a collection that is none (its own stream covers what follows).
func (s *Server) listReposByCollection(w http.ResponseWriter, r *http.Request) {
	raw, ok := readQuery(w, r)
	if !ok {
		return
	}
	q, err := parseListReposQuery(raw)
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
	before, complete, none := s.collectionsComplete(r, q.collections, epoch)
	// One more than asked: if it exists, there is a next page.
	dids, err := s.Index.ListReposUnion(q.collections, q.cursor, q.limit+1)
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "list repos", "collections", q.collections, "error", err)
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "index read failed")
		return
	}
	// The second question goes out now; the page is encoded while Postgres answers.
	var after chan bool
	if complete || none {
		after = make(chan bool, 1)
		if s.Backfill.CompletionEpoch() == epoch {
			// Nothing left "complete" during the read (jobs/completion.go): no query. A
			// collection that was none needs none either: a backfill begun during the read
			// can only have added real DIDs to it, and the next page says incomplete.
			after <- true
		} else {
			go func() { after <- s.sameCompletion(r, q.collections, before, none) }()
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
	switch {
	case complete && <-after:
		state = source.BackfillComplete
	case none && <-after:
		state = source.BackfillNone
	}
	w.Header().Set(source.BackfillHeader, state)
	writeCacheable(w, r, *buf, state, listPageCacheControl)
}

// appendListRepos appends the page's JSON, byte for byte what encoding/json writes for
// indigo's SyncListReposByCollection_Output ({"cursor":…,"repos":[{"did":…}]}, cursor omitted
// when empty) and a trailing newline, as collectiondir sends it, without reflection or a
// struct per DID.
func appendListRepos(b []byte, dids []string, cursor string) []byte {
	b = append(b, '{')
	if cursor != "" {
		b = append(b, `"cursor":`...)
		b = appendJSONString(b, cursor)
		b = append(b, ',')
	}
	b = append(b, `"repos":[`...)
	for i, d := range dids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"did":`...)
		b = appendJSONString(b, d)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
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

// writeXRPCError answers in XRPC's error shape (indigo's xrpc.XRPCError, what indigo's
// servers send and its clients read). Errors are never cached: the next request may well
// succeed.
func writeXRPCError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, xrpc.XRPCError{ErrStr: name, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
