package api

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func (s *stack) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.http.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// The move's request is checked before anything changes: an empty list never means every
// collection, and the cursor choice is explicit.
func TestMoveSourceRequestsAreChecked(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	const path = "/admin/backfill-collections/move-source"
	for _, tc := range []struct {
		body   string
		status int
		says   string
	}{
		{`{"source":"relay.example","cursor":"keep"}`, 400, "name the collections to move, or set all"},
		{`{"source":"relay.example","cursor":"keep","all":true,"collections":["app.bsky.feed.post"]}`, 400, "not both"},
		{`{"source":"http://relay.example/path","all":true,"cursor":"keep"}`, 400, "only scheme, host and port"},
		{`{"source":"relay.example","all":true,"cursor":"sideways"}`, 422, "cursor"},
		{`{"source":"relay.example","all":true}`, 422, "cursor"},
		{`{"source":"relay.example","collections":["not an nsid"],"cursor":"keep"}`, 400, "is not an NSID"},
		{`{"source":"relay.example","collections":["com.example.none"],"cursor":"restart"}`, 404, "com.example.none"},
		{`{"source":"relay.example","all":true,"cursor":"restart"}`, 200, `"moved":[]`},
	} {
		t.Run(tc.body, func(t *testing.T) {
			t.Parallel() // no collection has a row: no case changes anything
			status, body := s.post(t, path, tc.body)
			require.Equal(t, tc.status, status, body)
			require.Contains(t, body, tc.says)
		})
	}
}
