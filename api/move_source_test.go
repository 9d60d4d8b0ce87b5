package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func (s *stack) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	return s.sendJSON(t, http.MethodPost, path, body)
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
