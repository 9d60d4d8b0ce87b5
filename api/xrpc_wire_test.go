package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/xrpc"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// indigoPage is the page as indigo's generated type holds it. Repos is never nil: an empty
// page is "repos":[], not null.
func indigoPage(dids []string, cursor string) comatproto.SyncListReposByCollection_Output {
	out := comatproto.SyncListReposByCollection_Output{Repos: make([]*comatproto.SyncListReposByCollection_Repo, len(dids))}
	for i, d := range dids {
		out.Repos[i] = &comatproto.SyncListReposByCollection_Repo{Did: d}
	}
	if cursor != "" {
		out.Cursor = &cursor
	}
	return out
}

// appendListRepos writes by hand (no reflection, no struct per DID) exactly what
// encoding/json writes for indigo's SyncListReposByCollection_Output, escapes included, and
// what collectiondir sends: cursor first.
func TestAppendListReposIsIndigosPage(t *testing.T) {
	t.Parallel()
	dids := testrelay.DIDs("w", 3)
	odd := []string{`did:web:a<b>&c`, "did:web:\u00e9t\u00e9", `did:x:"quoted"\`, "did:x:\x01\u2028", "did:web:a.example%3A8080"}
	for _, tc := range []struct {
		name   string
		dids   []string
		cursor string
	}{
		{"empty last page", nil, ""},
		{"one DID, last page", dids[:1], ""},
		{"full page with cursor", dids, dids[2]},
		{"cursor, one DID", dids[:1], dids[0]},
		{"DIDs that need escaping", odd, ""},
		{"escaping with cursor", odd, odd[3]},
		{"invalid UTF-8", []string{"did:x:\xff"}, "did:x:\xfe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := appendListRepos(nil, tc.dids, tc.cursor)
			page := indigoPage(tc.dids, tc.cursor)

			// Strictly decoded, it is indigo's page (invalid UTF-8 comes back as U+FFFD, as
			// encoding/json writes it).
			var decoded comatproto.SyncListReposByCollection_Output
			decodeStrict(t, string(got), &decoded)
			if utf8.ValidString(strings.Join(tc.dids, "") + tc.cursor) {
				require.Equal(t, page, decoded)
			}

			want, err := json.Marshal(page)
			require.NoError(t, err)
			require.Equal(t, string(want)+"\n", string(got))
		})
	}
}

// The types that describe the wire in the OpenAPI document encode exactly as indigo's do,
// and writeXRPCError writes indigo's xrpc.XRPCError.
func TestDocumentedTypesAreIndigos(t *testing.T) {
	t.Parallel()
	t.Run("page", func(t *testing.T) {
		t.Parallel()
		dids := testrelay.DIDs("d", 2)
		ours, err := json.Marshal(ListReposPage{Repos: []ListReposRepo{{dids[0]}, {dids[1]}}})
		require.NoError(t, err)
		theirs, err := json.Marshal(indigoPage(dids, ""))
		require.NoError(t, err)
		require.Equal(t, string(theirs), string(ours))
	})
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		ours, err := json.Marshal(XRPCError{Error: "InvalidRequest", Message: "m"})
		require.NoError(t, err)
		theirs, err := json.Marshal(xrpc.XRPCError{ErrStr: "InvalidRequest", Message: "m"})
		require.NoError(t, err)
		require.Equal(t, string(theirs), string(ours))

		w := httptest.NewRecorder()
		writeXRPCError(w, 400, "InvalidRequest", "m")
		require.Equal(t, string(theirs)+"\n", w.Body.String())
	})
}

// BenchmarkAppendListRepos writes a 1000-DID page, the public endpoint's JSON for each
// request at limit 1000.
//
//	go test -run '^$' -bench AppendListRepos ./api/
func BenchmarkAppendListRepos(b *testing.B) {
	dids := testrelay.DIDs("b", 1000)
	buf := make([]byte, 0, 64<<10)
	for b.Loop() {
		buf = appendListRepos(buf[:0], dids, dids[len(dids)-1])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(dids)), "ns/DID")
}
