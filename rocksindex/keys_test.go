package rocksindex

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ coll, did string }{
		{"app.bsky.feed.post", "did:plc:ewvi7nxzyoun6zhxrhs64oiz"},
		{"a.b.c", "did:web:example.com%3A8080"},
	} {
		t.Run(tc.coll+" "+tc.did, func(t *testing.T) {
			t.Parallel()
			coll, did, err := parseRBCKey(rbcKey(tc.coll, tc.did))
			require.NoError(t, err)
			require.Equal(t, tc.coll, coll)
			require.Equal(t, tc.did, did)

			did, coll, err = parseCBRKey(cbrKey(tc.did, tc.coll))
			require.NoError(t, err)
			require.Equal(t, tc.coll, coll)
			require.Equal(t, tc.did, did)
		})
	}
}

func TestKeyLayoutIsZlays(t *testing.T) {
	t.Parallel()
	require.Equal(t, []byte("a.b.c\x00did:plc:x"), rbcKey("a.b.c", "did:plc:x"))
	require.Equal(t, []byte("did:plc:x\x00a.b.c"), cbrKey("did:plc:x", "a.b.c"))
}

func TestParseKeyRejectsMalformed(t *testing.T) {
	t.Parallel()
	for _, k := range [][]byte{nil, []byte("nosep"), []byte("\x00did"), []byte("coll\x00")} {
		t.Run(fmt.Sprintf("%q", k), func(t *testing.T) {
			t.Parallel()
			_, _, err := parseRBCKey(k)
			require.ErrorIs(t, err, errMalformedKey)
			_, _, err = parseCBRKey(k)
			require.ErrorIs(t, err, errMalformedKey)
		})
	}
}
