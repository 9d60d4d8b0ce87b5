package source

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseAcceptsHostsAndBaseURLs(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]Source{
		"bsky.network":              {Name: "bsky.network", BaseURL: "https://bsky.network"},
		"BSKY.network":              {Name: "bsky.network", BaseURL: "https://bsky.network"},
		"http://127.0.0.1:2510":     {Name: "http://127.0.0.1:2510", BaseURL: "http://127.0.0.1:2510"},
		"https://relay.example/":    {Name: "https://relay.example", BaseURL: "https://relay.example"},
		"http://[::1]:8080":         {Name: "http://[::1]:8080", BaseURL: "http://[::1]:8080"},
		"https://Relay.Example:443": {Name: "https://relay.example:443", BaseURL: "https://relay.example:443"},
	} {
		t.Run(raw, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(raw)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestParseRefusesEverythingElse(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"", "ftp://example.com", "file:///etc/passwd", "javascript:alert(1)", "http://user:pw@example.com",
		"https://example.com/xrpc", "https://example.com?x=1", "https://example.com#x", "exa mple.com",
		"example.com\r\n", "example.com\x00", "http://example.com:0", "http://example.com:65536",
		"http://example.com:abc", "-example.com", "example-.com", "example..com", "ex_ample.com",
		"http://", "https:///path", strings.Repeat("a", 301), strings.Repeat("a", 64) + ".com",
	} {
		t.Run(fmt.Sprintf("%.40q", raw), func(t *testing.T) {
			t.Parallel()
			_, err := Parse(raw)
			require.ErrorIs(t, err, ErrInvalidSource)
		})
	}
}

func TestDecodePage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		want Page
	}{
		{`{"repos":[{"did":"did:plc:a"},{"did":"x"}],"cursor":"abc"}`, Page{DIDs: []string{"did:plc:a", "x"}, Cursor: "abc"}},
		{`{"cursor":"abc","repos":[{"did":"did:plc:a"}]}`, Page{DIDs: []string{"did:plc:a"}, Cursor: "abc"}}, // collectiondir's order
		{`{"repos":[]}`, Page{DIDs: []string{}}},
		{`{"repos":[],"cursor":null}`, Page{DIDs: []string{}}},
		// A null or empty entry is an empty DID, which the page worker skips and counts.
		{`{"repos":[null,{},{"did":"did:plc:b"}]}`, Page{DIDs: []string{"", "", "did:plc:b"}}},
	} {
		t.Run(tc.body, func(t *testing.T) {
			t.Parallel()
			p, err := decodePage([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, p)
		})
	}
	for _, bad := range []string{``, `{`, `[]`, `{"cursor":"x"}`, `{"repos":null}`, `{"repos":"x"}`, `<html>`, `{"repos":[{"did":1}]}`} {
		t.Run("refuses "+bad, func(t *testing.T) {
			t.Parallel()
			_, err := decodePage([]byte(bad))
			require.ErrorIs(t, err, ErrMalformedPage)
		})
	}
}

// A bare host with a port is refused with what to write instead, and a bad port says so.
func TestParseSaysWhatIsWrongWithAPort(t *testing.T) {
	t.Parallel()
	_, err := Parse("bsky.network:99999")
	require.ErrorContains(t, err, `bad port "99999"`)
	_, err = Parse("relay.example.com:2600")
	require.ErrorContains(t, err, "a port needs a scheme: write https://relay.example.com:2600")
	_, err = Parse("http://127.0.0.1:99999")
	require.ErrorContains(t, err, `bad port "99999"`)
}
