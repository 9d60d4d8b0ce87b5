package source

import (
	"errors"
	"testing"
)

func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{
		`{"repos":[{"did":"did:plc:a"}],"cursor":"abc"}`, `{"repos":[]}`, `{"repos":null}`, `{`, `[]`,
		`{"repos":[{"did":1}]}`, `{"repos":[{}],"cursor":null}`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedPage) {
				t.Fatalf("error does not wrap ErrMalformedPage: %v", err)
			}
			if p.DIDs != nil || p.Cursor != "" {
				t.Fatalf("an error came with data: %+v", p)
			}
		}
	})
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"bsky.network", "http://127.0.0.1:2510", "https://[::1]:8080/", "ftp://x", "http://u:p@h", "a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		src, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidSource) {
				t.Fatalf("error does not wrap ErrInvalidSource: %v", err)
			}
			return
		}
		// What is stored must parse back to itself.
		again, err := Parse(src.Name)
		if err != nil || again != src {
			t.Fatalf("%q → %+v does not round-trip: %+v, %v", raw, src, again, err)
		}
	})
}
