package api

import (
	"net/url"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/source"
)

func FuzzListReposQuery(f *testing.F) {
	for _, s := range []string{
		"collection=app.bsky.feed.post", "collection=a.b.c&limit=10&cursor=did:plc:abc",
		"collection=a.b.c&limit=-1", "collection=a.b.c&limit=99999999999999999999", "limit=abc",
		"collection=%00&cursor=%ff", "collection=a.b.c&cursor=did:PLC:x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		values, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseListReposQuery(values)
		if err != nil {
			return
		}
		if q.limit < 1 || q.limit > source.MaxLimit {
			t.Fatalf("limit %d out of range", q.limit)
		}
		if _, err := syntax.ParseNSID(q.collection); err != nil {
			t.Fatalf("collection %q accepted: %v", q.collection, err)
		}
		if q.cursor != "" {
			if _, err := syntax.ParseDID(q.cursor); err != nil {
				t.Fatalf("cursor %q accepted: %v", q.cursor, err)
			}
		}
	})
}
