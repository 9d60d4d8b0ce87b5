package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// maxAccountsPage caps a listRepos answer: 1,000 accounts are about 250 KB.
const maxAccountsPage = 8 << 20

// errNoAccountList: the relay does not serve com.atproto.sync.listRepos at all (404, 501).
// Asking again will not change that, so the sweep stops.
var errNoAccountList = errors.New("the relay does not serve com.atproto.sync.listRepos: this sweep cannot run (start one of a relay that does)")

// ErrBadRelayURL refuses a relay that is not a ws, wss, http or https URL with a host.
var ErrBadRelayURL = errors.New("not a relay URL")

// relayHTTPBase turns a relay's stream URL (ws:// or wss://, as COLINDEX_FIREHOSE_URL) into
// the http(s) base its XRPC methods answer at; an http(s) base is kept.
func relayHTTPBase(relay string) (string, error) {
	u, err := url.Parse(relay)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: %q has no host", ErrBadRelayURL, relay)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("%w: %q (ws, wss, http or https)", ErrBadRelayURL, relay)
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), nil
}

// fetchAccounts asks the relay for the page of its accounts after cursor.
func fetchAccounts(ctx context.Context, client *source.Client, base, cursor string) (*comatproto.SyncListRepos_Output, error) {
	q := url.Values{"limit": {strconv.Itoa(sweepPageLimit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	body, status, err := relayGet(ctx, client, base, "/xrpc/com.atproto.sync.listRepos?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("listRepos: %w", err)
	}
	if status == http.StatusNotFound || status == http.StatusNotImplemented {
		return nil, fmt.Errorf("listRepos: %w (%s answered HTTP %d: %.200s)", errNoAccountList, base, status, bytes.TrimSpace(body))
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("listRepos: %s answered HTTP %d: %.200s", base, status, bytes.TrimSpace(body))
	}
	var out comatproto.SyncListRepos_Output
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("listRepos: %w: %w", errMalformedAnswer, err)
	}
	if out.Repos == nil {
		return nil, fmt.Errorf("listRepos: %w: no repos", errMalformedAnswer)
	}
	return &out, nil
}

// relayWaitInline is how long one request of a sweep waits, in all, for its host's rate cap
// and holds before it hands the wait back to the job (a source.RateLimitedError: a snooze of
// the whole step, not a failure). A step asks up to unlistedAsks questions; snoozing it for
// every short wait would throw its answers away again and again at a low cap, or while a
// backfill of the same host takes the tokens first.
const relayWaitInline = time.Minute

// relayGet asks the relay at base (relayHTTPBase's form: a path is kept) for path, through
// the sources' client: paced by the rate cap of its host, shared with the backfill's pages
// when the relay is also their source, and holding off after its 429s. It reads at most
// maxAccountsPage of the answer.
func relayGet(ctx context.Context, client *source.Client, base, path string) ([]byte, int, error) {
	src := source.Source{Name: base, BaseURL: base}
	deadline := time.Now().Add(relayWaitInline)
	for {
		status, body, err := client.Get(ctx, src, path, maxAccountsPage)
		var limited *source.RateLimitedError
		if !errors.As(err, &limited) || time.Now().Add(limited.Wait).After(deadline) {
			return body, status, err
		}
		select {
		case <-time.After(limited.Wait):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// relayStatus is the status the index keeps for an account the relay names, as the stream
// reads an #account event; an absent active is true, as the lexicon has it.
func relayStatus(active *bool, status *string) string {
	s := ""
	if status != nil {
		s = *status
	}
	return rocksindex.StatusOf(active == nil || *active, s)
}

// fetchRepoStatus asks the relay for one account's status as it is now. errRepoNotFound (in
// the chain) when the relay does not know the account.
func fetchRepoStatus(ctx context.Context, client *source.Client, base, did string) (*comatproto.SyncGetRepoStatus_Output, error) {
	body, status, err := relayGet(ctx, client, base, "/xrpc/com.atproto.sync.getRepoStatus?"+url.Values{"did": {did}}.Encode())
	if err != nil {
		return nil, fmt.Errorf("getRepoStatus of %s: %w", did, err)
	}
	if status != http.StatusOK {
		// The XRPC error as the PDS checks read it: RepoNotFound is errRepoNotFound.
		return nil, fmt.Errorf("getRepoStatus of %s at %s: %w", did, base, decodePDSError(status, body))
	}
	var out comatproto.SyncGetRepoStatus_Output
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("getRepoStatus of %s: %w: %v", did, errMalformedAnswer, err)
	}
	if out.Did != did {
		return nil, fmt.Errorf("getRepoStatus of %s: %w: answer is about %s", did, errMalformedAnswer, truncate(out.Did, 200))
	}
	return &out, nil
}

// changedSince says whether the account's repo changed at or after t: its rev is a TID, whose
// time is when its PDS made the commit. A rev that is not a TID may be anything: yes.
func changedSince(r *comatproto.SyncListRepos_Repo, t time.Time) bool {
	tid, err := syntax.ParseTID(r.Rev)
	if err != nil {
		return true
	}
	return !tid.Time().Before(t)
}
