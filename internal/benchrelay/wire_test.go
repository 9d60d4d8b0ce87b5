package benchrelay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/xrpc"
	"github.com/stretchr/testify/require"
)

// The hand-written page bytes are exactly json.Marshal's of indigo's generated type for the
// same page: with and without a cursor, empty, one DID, many.
func TestPagesAreIndigosWireType(t *testing.T) {
	t.Parallel()
	d := NewDataset(Spec{Collections: 3, Pairs: 2000, LargestShare: 0.5})
	for _, tc := range []struct {
		i, start, end int
		withCursor    bool
	}{
		{0, 0, 0, false}, {0, 0, 1, false}, {0, 0, 1, true}, {1, 3, 250, true}, {0, 900, 1000, false},
	} {
		t.Run(fmt.Sprintf("c%d[%d:%d]cursor=%v", tc.i, tc.start, tc.end, tc.withCursor), func(t *testing.T) {
			t.Parallel()
			body := d.appendPage(nil, tc.i, tc.start, tc.end, tc.withCursor)
			var page comatproto.SyncListReposByCollection_Output
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&page), "%s", body)
			want := &comatproto.SyncListReposByCollection_Output{Repos: []*comatproto.SyncListReposByCollection_Repo{}}
			for j := tc.start; j < tc.end; j++ {
				want.Repos = append(want.Repos, &comatproto.SyncListReposByCollection_Repo{Did: d.DID(tc.i, j)})
			}
			require.Equal(t, tc.withCursor, page.Cursor != nil, "cursor presence")
			want.Cursor = page.Cursor // opaque: only its presence and its bytes below matter
			indigo, err := json.Marshal(want)
			require.NoError(t, err)
			require.Equal(t, string(indigo), string(body))
		})
	}
}

// Errors and the unknown collection's empty page are indigo's types, as collectiondir sends them.
func TestRelayAnswersInIndigosShapes(t *testing.T) {
	t.Parallel()
	r := New(NewDataset(Spec{Collections: 2, Pairs: 10, LargestShare: 0.5}), Latency{})
	t.Cleanup(r.Close)
	get := func(t *testing.T, query string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(r.URL + "/xrpc/com.atproto.sync.listReposByCollection?" + query)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, body
	}
	t.Run("unknown collection", func(t *testing.T) {
		t.Parallel()
		code, body := get(t, "collection=com.example.none")
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"repos":[]}`, string(body))
	})
	for _, tc := range []struct{ query, name string }{
		{"collection=com.bench.c0000&limit=abc", "BadRequest"},
		{"collection=com.bench.c0000&cursor=garbage", "DatabaseError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, body := get(t, tc.query)
			require.GreaterOrEqual(t, code, 400)
			var e xrpc.XRPCError
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&e), "%s", body)
			require.Equal(t, tc.name, e.ErrStr)
			require.NotEmpty(t, e.Message)
		})
	}
}
