package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Moving the firehose cursor is refused with a clear error when there is nothing to move (the
// firehose is disabled) and when the cursor is not a seq nor -1; a move that succeeds is tested
// end to end (cmd/colindex) and in the firehose package.
func TestMoveFirehoseCursorRefusals(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{}) // no firehose configured
	put := func(body string) (int, string) { return s.sendJSON(t, http.MethodPut, "/admin/firehose/cursor", body) }
	code, body := put(`{"cursor": 5}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "COLINDEX_FIREHOSE_URL is empty")
	for _, bad := range []string{`{"cursor": -2}`, `{"cursor": "live"}`, `{}`, `not json`} {
		code, body := put(bad)
		require.True(t, code == http.StatusUnprocessableEntity || code == http.StatusBadRequest, "%s: %d %s", bad, code, body)
	}
}
