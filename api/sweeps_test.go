package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
)

// POST /admin/sweeps walks the named relay's account list: a deleted account leaves the
// index, and the sweep shows in GET /admin/firehose. Without a relay and without a firehose
// it is 409; a relay that is not a URL is 400, and starts nothing.
func TestAccountSweepRoute(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	const post = "app.bsky.feed.post"
	dids := testrelay.DIDs("sweepapi", 2)
	require.NoError(t, s.index.Add(post, dids))
	relay := fakerelay.New(t)
	_, err := relay.AccountStatus(dids[0], false, "deleted")
	require.NoError(t, err)

	code, body := s.sendJSON(t, http.MethodPost, "/admin/sweeps", `{}`)
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body, "name the relay")
	code, body = s.sendJSON(t, http.MethodPost, "/admin/sweeps", `{"relay":"ftp://relay.example"}`)
	require.Equal(t, http.StatusBadRequest, code, body)

	code, body = s.sendJSON(t, http.MethodPost, "/admin/sweeps", `{"relay":"`+relay.URL()+`"}`)
	require.Equal(t, http.StatusOK, code, body)
	var started struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &started))
	await.Until(t, 30*time.Second, "the sweep to finish", func() (bool, any) {
		_, body := s.do(t, http.MethodGet, "/admin/firehose", adminAuth)
		var st struct {
			Sweeps []struct {
				ID              int64   `json:"id"`
				AccountsRemoved int64   `json:"accounts_removed"`
				FinishedAt      *string `json:"finished_at"`
			} `json:"sweeps"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &st))
		return len(st.Sweeps) == 1 && st.Sweeps[0].ID == started.ID && st.Sweeps[0].FinishedAt != nil &&
			st.Sweeps[0].AccountsRemoved == 1, body
	})
	got, err := s.index.ListRepos(post, "", 10)
	require.NoError(t, err)
	require.Equal(t, dids[1:], got)
}
