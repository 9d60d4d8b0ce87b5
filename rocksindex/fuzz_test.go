package rocksindex

import (
	"strings"
	"testing"
)

func FuzzKeyRoundTrip(f *testing.F) {
	f.Add("app.bsky.feed.post", "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	f.Add("a.b.c", "did:web:example.com%3A8080")
	f.Add("x", "y")
	f.Fuzz(func(t *testing.T, coll, did string) {
		if coll == "" || did == "" || strings.ContainsRune(coll, 0) || strings.ContainsRune(did, 0) {
			t.Skip("NSIDs and DIDs are never empty and never hold a zero byte")
		}
		c, d, err := parseRBCKey(rbcKey(coll, did))
		if err != nil || c != coll || d != did {
			t.Fatalf("rbc %q/%q → %q/%q, %v", coll, did, c, d, err)
		}
		d, c, err = parseCBRKey(cbrKey(did, coll))
		if err != nil || c != coll || d != did {
			t.Fatalf("cbr %q/%q → %q/%q, %v", did, coll, d, c, err)
		}
		// A collection's keys sort inside its bounds, and nothing of another collection does.
		k := string(rbcKey(coll, did))
		if k < string(collectionPrefix(coll)) || k >= string(collectionUpperBound(coll)) {
			t.Fatalf("key %q outside its collection's range", k)
		}
	})
}
