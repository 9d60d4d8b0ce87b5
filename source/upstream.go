package source

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// BackfillHeader is the response header a colindex sets on listReposByCollection:
// BackfillComplete when its own backfill of that collection has finished, BackfillNone when
// it never backfilled it (its DIDs come from its stream alone), BackfillIncomplete otherwise. A colindex pages in DID order with the last DID as cursor, so a DID it adds
// behind a downstream's cursor would never reach that downstream: pages from an upstream
// that is still filling are refused (ErrUpstreamIncomplete). Sources that are not colindex
// (bsky.network) send no such header and are unaffected.
const (
	BackfillHeader     = "Colindex-Backfill"
	BackfillComplete   = "complete"
	BackfillIncomplete = "incomplete"
	BackfillNone       = "none"
)

// ErrUpstreamIncomplete is wrapped when the source is a colindex that has not finished the
// collection: its pages could miss DIDs it adds later behind the cursor.
var ErrUpstreamIncomplete = errors.New("the upstream colindex has not finished backfilling this collection, so its pages could miss DIDs; retry once it completes")

// checkUpstream refuses a page whose source says its backfill of the collection is not
// complete. Any value other than "complete" is refused (chaining is exact or it is refused),
// except "none" from a replica's peer (replica true): the replica's stream starts from the
// peer's cursor, so it replays every event after what such a page holds.
func checkUpstream(h http.Header, src Source, collection string, replica bool) error {
	vals := h.Values(BackfillHeader)
	if len(vals) == 0 {
		return nil
	}
	v, _, _ := strings.Cut(vals[0], ";")
	v = strings.ToLower(strings.TrimSpace(v))
	if len(vals) == 1 && (v == BackfillComplete || (replica && v == BackfillNone)) {
		return nil
	}
	return fmt.Errorf("%w (%s, %s: %s %q)", ErrUpstreamIncomplete, src.Name, collection,
		BackfillHeader, truncate(strings.Join(vals, ", "), 100))
}
