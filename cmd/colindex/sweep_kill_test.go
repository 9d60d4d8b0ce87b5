package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/testrelay"
)

// sweepState is the part of /admin/firehose that lists sweeps.
type sweepState struct {
	ID         int64   `json:"id"`
	Pages      int64   `json:"pages"`
	Repos      int64   `json:"repos"`
	Unlisted   int64   `json:"unlisted_asked"`
	FinishedAt *string `json:"finished_at"`
}

func (s *service) sweeps() []sweepState {
	s.t.Helper()
	code, body := s.call(http.MethodGet, "/admin/firehose")
	require.Equal(s.t, http.StatusOK, code, string(body))
	var st struct {
		Sweeps []sweepState `json:"sweeps"`
	}
	require.NoError(s.t, json.Unmarshal(body, &st))
	return st.Sweeps
}

// A sweep of the relay's account list SIGKILLed mid-walk, twice, resumes from its saved cursor
// after each restart, asks about the accounts the relay did not list, and ends with the index
// equal to the truth as sets (every deleted account's pairs gone, every taken-down one hidden,
// every other listed), each page counted once. The index came from a backfill whose source,
// like bsky.network, lists them all.
func TestEndToEndSweepSurvivesKillsExactly(t *testing.T) {
	t.Parallel()
	const post, n, page = "app.bsky.feed.post", 3000, 100
	source := testrelay.New()
	t.Cleanup(source.Close)
	dids := testrelay.DIDs("sweepkill", n)
	source.Append(post, dids...)
	source.SetLLMsTxt(testrelay.LexiconList(post))
	relay := fakerelay.New(t)
	var truth []string
	for i, d := range dids {
		var err error
		switch {
		case i%5 == 0:
			_, err = relay.AccountStatus(d, false, "deleted")
		case i%7 == 1:
			_, err = relay.AccountStatus(d, false, "takendown")
		default:
			relay.HoldRepo(d, "2222222222222")
			truth = append(truth, d)
		}
		require.NoError(t, err)
	}
	svc := newService(t, source)
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))
	svc.waitIdle(time.Minute)
	require.Len(t, svc.listAll(post), n)

	relay.ListReposPageMax(page)
	relay.ListReposDelay(50 * time.Millisecond)
	req, err := http.NewRequest(http.MethodPost, svc.base+"/admin/sweeps", strings.NewReader(`{"relay":"`+relay.URL()+`"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e2ePassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	for _, at := range []int64{5, 15} {
		svc.waitFor("the sweep to walk on", func() bool {
			sw := svc.sweeps()
			return len(sw) == 1 && sw[0].Pages >= at
		})
		_ = svc.stop(syscall.SIGKILL) // killed: its exit error says so
		svc.start()
	}
	var got []sweepState
	svc.waitFor("the sweep to finish", func() bool {
		got = svc.sweeps()
		return len(got) == 1 && got[0].FinishedAt != nil
	})
	require.Equal(t, int64(len(truth)/page+1), got[0].Pages, "each page counted once (the last one short)")
	require.Equal(t, int64(len(truth)), got[0].Repos, "the relay lists its active accounts")
	require.Equal(t, int64(n-len(truth)), got[0].Unlisted, "and is asked about each of the others")
	slices.Sort(truth)
	require.Equal(t, truth, svc.listAll(post))
}
