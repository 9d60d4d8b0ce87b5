package jobs

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/colindex/colindex/internal/testrelay"
)

func FuzzParseLexiconList(f *testing.F) {
	f.Add(testrelay.LexiconList("app.bsky.feed.post", "sh.tangled.repo"))
	f.Add("[x](https://lexicon.garden/lexicon/did:plc:abc/com.example.x/llms.txt)")
	f.Add("[](/lexicon/did:web:a/a.b.c) [[]]((( ](lexicon/did:/x.y.z)")
	f.Add("# prose only\n\nno links here")
	f.Fuzz(func(t *testing.T, md string) {
		seen := map[string]bool{}
		for _, n := range ParseLexiconList(md) {
			if _, err := syntax.ParseNSID(n); err != nil {
				t.Fatalf("returned %q, not an NSID: %v", n, err)
			}
			if seen[n] {
				t.Fatalf("returned %q twice", n)
			}
			seen[n] = true
		}
	})
}

func FuzzValidDIDs(f *testing.F) {
	for _, s := range []string{"did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com%3A8080", "did:PLC:x", "", "did:", "did:a:b:"} {
		f.Add(s, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		in := []string{a, b}
		valid, skipped := ValidDIDs(in)
		if len(valid)+skipped != len(in) {
			t.Fatalf("%d valid + %d skipped != %d", len(valid), skipped, len(in))
		}
		for _, d := range valid {
			if _, err := syntax.ParseDID(d); err != nil {
				t.Fatalf("kept %q: %v", d, err)
			}
		}
	})
}
