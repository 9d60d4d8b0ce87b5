package jobs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

func TestParseLexiconListKeepsOnlyLexiconLinks(t *testing.T) {
	t.Parallel()
	md := testrelay.LexiconList("app.bsky.feed.post", "sh.tangled.repo", "app.bsky.feed.post") +
		"[bad](https://lexicon.garden/lexicon/did:plc:x/not_an.nsid!)\n" +
		"[no did](https://lexicon.garden/lexicon/notadid/com.example.x)\n" +
		"[two parts](https://lexicon.garden/lexicon/did:plc:x/example.com)\n" +
		"[unclosed](https://lexicon.garden/lexicon/did:plc:x/com.example.y\n" +
		"plain text com.example.z\n"
	require.Equal(t, []string{"app.bsky.feed.post", "sh.tangled.repo"}, ParseLexiconList(md))
}

func TestParseLexiconListSurvivesJunk(t *testing.T) {
	t.Parallel()
	require.Empty(t, ParseLexiconList(strings.Repeat("[[](", 10000)))
	require.Empty(t, ParseLexiconList("\x00\xff]("))
}

func TestValidDIDs(t *testing.T) {
	t.Parallel()
	valid, skipped := ValidDIDs([]string{
		"did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com", "did:web:localhost%3A8080",
		"", "did:", "did:PLC:ewvi7nxzyoun6zhxrhs64oiz", "DID:plc:x", "did:plc:" + strings.Repeat("a", 3000), "did:plc:a b",
	})
	require.Equal(t, []string{"did:plc:ewvi7nxzyoun6zhxrhs64oiz", "did:web:example.com", "did:web:localhost%3A8080"}, valid)
	require.Equal(t, 6, skipped)
}
