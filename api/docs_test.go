package api

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// /docs works without internet: every operation of the document is on the page, and the
// page loads nothing from elsewhere (no script at all, no external stylesheet or image).
func TestDocsPageIsSelfContained(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	code, body := s.do(t, http.MethodGet, "/docs")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "<script")
	require.Empty(t, regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindAllString(body, -1), "external assets")
	for path := range s.srv.NewAPI(http.NewServeMux()).OpenAPI().Paths {
		t.Run("lists "+path, func(t *testing.T) {
			t.Parallel()
			require.Contains(t, body, path)
		})
	}
	for _, id := range []string{"startBackfill", "getBackfillStatus", "resetCollection", "getFirehoseStatus"} {
		t.Run("anchors "+id, func(t *testing.T) {
			t.Parallel()
			require.Contains(t, body, `id="`+id+`"`)
		})
	}
}
