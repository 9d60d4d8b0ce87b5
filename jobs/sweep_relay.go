package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// maxAccountsPage caps a listRepos answer: 1,000 accounts are about 250 KB.
const maxAccountsPage = 8 << 20

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
func fetchAccounts(ctx context.Context, client *http.Client, base, cursor string) (*comatproto.SyncListRepos_Output, error) {
	q := url.Values{"limit": {strconv.Itoa(sweepPageLimit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	u := base + "/xrpc/com.atproto.sync.listRepos?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", verifyUserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("listRepos: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAccountsPage+1))
	if err != nil {
		return nil, fmt.Errorf("listRepos: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("listRepos: %s answered HTTP %d: %.200s", base, resp.StatusCode, body)
	}
	if len(body) > maxAccountsPage {
		return nil, fmt.Errorf("listRepos: the answer is larger than %d bytes", maxAccountsPage)
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

// relayStatus is the status the index keeps for an account the relay lists, read as the
// stream reads an #account event: active (absent means active, as the lexicon has it) is "",
// inactive is its status, or "inactive" when the relay names none.
func relayStatus(r *comatproto.SyncListRepos_Repo) string {
	if r.Active == nil || *r.Active {
		return ""
	}
	if r.Status != nil && *r.Status != "" {
		return *r.Status
	}
	return "inactive"
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
