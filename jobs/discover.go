package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// maxLexiconListBytes caps the lexicon list download; the real one is about 100 KB.
const maxLexiconListBytes = 8 << 20

// DefaultLexiconListMax caps how many collections one lexicon list may add to a run. A
// third-party list decides how many progress rows, page jobs and metric series colindex
// creates (8 MiB can link about 100,000 NSIDs); the real list names about 700, the network
// about 1,300 collections. A start can raise the cap (lexicon_list_max).
const DefaultLexiconListMax = 5000

// Discoverer finds the collections a run pages: the union of Lexicon Garden's list, the
// collections already in the index and, when the source serves one, the source's own list
// (collectiondir's /v1/listCollections: a colindex peer, or collectiondir itself).
type Discoverer struct {
	HTTP *http.Client
	// LexiconListURL is Lexicon Garden's llms.txt (or a stand-in); empty disables it.
	LexiconListURL string
	Index          *rocksindex.Index
	// Source asks a source for its collection list; nil skips that.
	Source *source.Client
}

// Discovery is what discovery found. A source that failed leaves its error here and the
// run goes on with the other.
type Discovery struct {
	Collections      []string
	FromLexiconList  int
	FromIndex        int
	LexiconListError string
	IndexScanError   string
	// LexiconListDropped counts the list's NSIDs past the cap, left out of the run.
	LexiconListDropped int
	// FromSource counts the collections the source listed; SourceListError says why its
	// list could not be read (a source that serves none is not an error).
	FromSource      int
	SourceListError string
}

// DiscoverFrom is Discover with the source's own collection list in the union, when the
// source serves one. A failure leaves its error and the run goes on with the rest.
func (d *Discoverer) DiscoverFrom(ctx context.Context, src source.Source, lexiconListMax int) Discovery {
	out := d.Discover(ctx, lexiconListMax)
	if d.Source == nil {
		return out
	}
	listed, err := d.Source.Collections(ctx, src)
	switch {
	case errors.Is(err, source.ErrNoCollectionList):
		return out
	case err != nil:
		out.SourceListError = err.Error()
		return out
	}
	out.FromSource = len(listed)
	out.Collections = slices.Compact(slices.Sorted(slices.Values(append(out.Collections, listed...))))
	return out
}

// Discover runs both sources and unions them, sorted. The lexicon list contributes at most
// lexiconListMax NSIDs (DefaultLexiconListMax when 0), in the list's order; the index's
// collections are real and all count.
func (d *Discoverer) Discover(ctx context.Context, lexiconListMax int) Discovery {
	var out Discovery
	set := map[string]struct{}{}
	if d.LexiconListURL != "" {
		nsids, err := d.fetchLexiconList(ctx)
		if err != nil {
			out.LexiconListError = err.Error()
		}
		if limit := cmp.Or(lexiconListMax, DefaultLexiconListMax); len(nsids) > limit {
			out.LexiconListDropped = len(nsids) - limit
			nsids = nsids[:limit]
		}
		out.FromLexiconList = len(nsids)
		for _, n := range nsids {
			set[n] = struct{}{}
		}
	}
	colls, err := d.Index.Collections()
	if err != nil {
		out.IndexScanError = err.Error()
	}
	for _, c := range colls {
		if _, err := syntax.ParseNSID(c); err == nil {
			set[c] = struct{}{}
			out.FromIndex++
		}
	}
	out.Collections = make([]string, 0, len(set))
	for c := range set {
		out.Collections = append(out.Collections, c)
	}
	slices.Sort(out.Collections)
	return out
}

func (d *Discoverer) fetchLexiconList(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.LexiconListURL, nil)
	if err != nil {
		return nil, fmt.Errorf("lexicon list: %w", err)
	}
	resp, err := d.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lexicon list: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lexicon list: %s answered HTTP %d", d.LexiconListURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLexiconListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("lexicon list: read: %w", err)
	}
	if len(body) > maxLexiconListBytes {
		return nil, fmt.Errorf("lexicon list: larger than %d bytes", maxLexiconListBytes)
	}
	return ParseLexiconList(string(body)), nil
}

// markdownLink matches [text](target) and captures the target.
var markdownLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)

// ParseLexiconList returns the distinct NSIDs linked from a Lexicon Garden llms.txt, in
// order of first appearance. Only links of the form .../lexicon/{did}/{nsid}[/...] count, and
// only when {nsid} is a valid NSID: links to docs, the home page or anything else are ignored.
func ParseLexiconList(markdown string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range markdownLink.FindAllStringSubmatch(markdown, -1) {
		nsid, ok := lexiconLinkNSID(m[1])
		if ok && !seen[nsid] {
			seen[nsid] = true
			out = append(out, nsid)
		}
	}
	return out
}

func lexiconLinkNSID(target string) (string, bool) {
	u, err := url.Parse(target)
	if err != nil {
		return "", false
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	for i := 0; i+2 < len(segs); i++ {
		if segs[i] != "lexicon" || !strings.HasPrefix(segs[i+1], "did:") {
			continue
		}
		if n, err := syntax.ParseNSID(segs[i+2]); err == nil {
			return n.String(), true
		}
	}
	return "", false
}
