package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// What a source says about itself beyond its pages: the collections it holds (collectiondir's
// /v1/listCollections, which colindex serves too) and, for a colindex peer, its /_health.
// A replica uses both: the first to discover every collection its peer holds, the second to
// start its own stream where the peer's index stands.

// ReplicaOf marks src as the colindex this client's colindex replicates: its pages of
// collections it never backfilled (Colindex-Backfill: none) are accepted (checkUpstream).
func (c *Client) ReplicaOf(src Source) { c.replicaOf.Store(originOf(src)) }

func (c *Client) isReplicaPeer(src Source) bool {
	peer, _ := c.replicaOf.Load().(string)
	return peer != "" && peer == originOf(src)
}

// MaxListedCollections bounds what one source's collection list may add to a run: the
// network has about 1,300 collections, and a source that lists millions must not create
// millions of progress rows and jobs.
const MaxListedCollections = 20000

// ErrNoCollectionList is returned by Collections when the source does not serve a
// collection list (bsky.network's relay answers listReposByCollection only).
var ErrNoCollectionList = errors.New("source serves no /v1/listCollections")

// maxSmallBody caps the bodies read here (a 1,000-collection page is about 50 KB).
const maxSmallBody = 4 << 20

// listCollectionsPage is collectiondir's /v1/listCollections answer.
type listCollectionsPage struct {
	Collections map[string]int64 `json:"collections"`
	Cursor      string           `json:"cursor"`
}

// Collections pages src's /v1/listCollections to its end and returns the NSIDs it lists,
// sorted. Entries that are not NSIDs are left out; a list past MaxListedCollections, or a
// cursor that does not move forward, is an error (nothing is returned).
func (c *Client) Collections(ctx context.Context, src Source) ([]string, error) {
	var out []string
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page listCollectionsPage
		status, err := c.getJSON(ctx, src.BaseURL+"/v1/listCollections?"+q.Encode(), &page)
		if status == http.StatusNotFound || status == http.StatusNotImplemented {
			return nil, ErrNoCollectionList
		}
		if err != nil {
			return nil, fmt.Errorf("list collections of %s: %w", src.Name, err)
		}
		for nsid := range page.Collections {
			if _, err := syntax.ParseNSID(nsid); err == nil {
				out = append(out, nsid)
			}
		}
		if len(out) > MaxListedCollections {
			return nil, fmt.Errorf("list collections of %s: more than %d collections", src.Name, MaxListedCollections)
		}
		if page.Cursor == "" || len(page.Collections) == 0 {
			break
		}
		if page.Cursor <= cursor {
			return nil, fmt.Errorf("list collections of %s: cursor %q does not move past %q", src.Name, page.Cursor, cursor)
		}
		cursor = page.Cursor
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// PeerHealth is what a colindex peer's /_health says (api.healthOutput).
type PeerHealth struct {
	Status   string        `json:"status"`
	Ready    bool          `json:"ready"`
	Backfill string        `json:"backfill"`
	Firehose *PeerFirehose `json:"firehose"`
}

// PeerFirehose is the peer's stream: the relay it follows and its durable cursor there.
type PeerFirehose struct {
	URL       string `json:"url"`
	Connected bool   `json:"connected"`
	Cursor    int64  `json:"cursor"`
	CaughtUp  bool   `json:"caught_up"`
	// GapsOpen counts the peer's open gaps in the stream: its index may miss adds from
	// before its cursor (absent from a peer older than gaps: 0).
	GapsOpen int64 `json:"gaps_open"`
}

// Health reads a colindex peer's /_health. Its status code is not an error (a peer that is
// not ready answers 503 with the same body); a body that is not a colindex health is.
func (c *Client) Health(ctx context.Context, src Source) (PeerHealth, error) {
	var h PeerHealth
	status, err := c.getJSON(ctx, src.BaseURL+"/_health", &h)
	if err == nil && h.Status == "" {
		err = fmt.Errorf("not a colindex health answer (HTTP %d)", status)
	}
	if err != nil {
		return PeerHealth{}, fmt.Errorf("health of %s: %w", src.Name, err)
	}
	return h, nil
}

// getJSON GETs u and decodes a JSON body into out, whatever the status (returned); a body
// that is not JSON is an error naming the status.
func (c *Client) getJSON(ctx context.Context, u string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := readCapped(resp.Body, maxSmallBody)
	if err != nil {
		return resp.StatusCode, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(strings.ToLower(ct), "json") {
		return resp.StatusCode, fmt.Errorf("HTTP %d, content type %q", resp.StatusCode, truncate(ct, 100))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusServiceUnavailable {
		return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(string(body), 200))
	}
	return resp.StatusCode, nil
}
