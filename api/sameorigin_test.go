package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/jobs"
)

var basicAuth = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testPassword))

// scheduledJob inserts a page job due in an hour: it stays cancellable for the whole test.
func scheduledJob(t *testing.T, s *stack, collection string) int64 {
	t.Helper()
	res, err := s.srv.Backfill.River.Insert(context.Background(), jobs.PageArgs{Collection: collection},
		&river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.False(t, res.UniqueSkippedAsDuplicate)
	return res.Job.ID
}

func jobState(t *testing.T, s *stack, id int64) rivertype.JobState {
	t.Helper()
	job, err := s.srv.Backfill.River.JobGet(context.Background(), id)
	require.NoError(t, err)
	return job.State
}

// A hostile page cannot use the browser's cached Basic login to change anything in River UI:
// its form POST (text/plain, so no preflight) is refused whatever cross-site headers the
// browser adds, and the job is still there.
func TestRiverUIRefusesCrossSiteWrites(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	id := scheduledJob(t, s, "com.example.csrf")
	// What <form enctype="text/plain"> with one field named `{"ids":["ID"],"x":"` and the
	// value `"}` sends: a body that River UI's API decodes as JSON.
	body := `{"ids":["` + strconv.FormatInt(id, 10) + `"],"x":"="}`
	form := []string{basicAuth, "Content-Type: text/plain"}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"current browser", []string{"Origin: https://evil.example", "Sec-Fetch-Site: cross-site"}},
		{"browser without Sec-Fetch-Site", []string{"Origin: https://evil.example"}},
		{"same site, other origin", []string{"Sec-Fetch-Site: same-site"}},
		{"opaque origin (sandboxed frame)", []string{"Origin: null"}},
		// Sends neither header: an old browser, or a script that should use the bearer token.
		{"no proof of origin", nil},
	} {
		// One after another: each checks the job is still there after its own attempt.
		t.Run(tc.name, func(t *testing.T) {
			code, resp := s.send(t, http.MethodPost, "/riverui/api/jobs/cancel", body, append(form, tc.headers...)...)
			require.Equal(t, http.StatusForbidden, code, resp)
			require.Contains(t, resp, "refused")
			require.Equal(t, rivertype.JobStateScheduled, jobState(t, s, id))
		})
	}
	// PUT is guarded too (River UI pauses queues with it). The queue's row appears once its
	// producer has started; wait for it so a pause could not fail for want of a queue.
	require.Eventually(t, func() bool {
		_, err := s.srv.Backfill.River.QueueGet(context.Background(), jobs.QueuePages)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	code, _ := s.send(t, http.MethodPut, "/riverui/api/queues/"+jobs.QueuePages+"/pause", "",
		basicAuth, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site")
	require.Equal(t, http.StatusForbidden, code)
	queue, err := s.srv.Backfill.River.QueueGet(context.Background(), jobs.QueuePages)
	require.NoError(t, err)
	require.Nil(t, queue.PausedAt)

	// Reads are unchanged: River UI's pages still load and list jobs.
	code, resp := s.do(t, http.MethodGet, "/riverui/api/jobs?state=scheduled", basicAuth, "Sec-Fetch-Site: cross-site")
	require.Equal(t, http.StatusOK, code, resp)
}

// River UI's own page still works: it posts its JSON bodies without setting a Content-Type
// (the browser labels them text/plain;charset=UTF-8, as riverui v0.22's frontend does), with
// its own Origin and Sec-Fetch-Site: same-origin. A script with the bearer token needs neither.
func TestRiverUIAcceptsSameOriginAndBearerWrites(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	page := scheduledJob(t, s, "com.example.page")
	older := scheduledJob(t, s, "com.example.older")
	script := scheduledJob(t, s, "com.example.script")
	cancel := func(id int64) string { return `{"ids":["` + strconv.FormatInt(id, 10) + `"]}` }

	code, resp := s.send(t, http.MethodPost, "/riverui/api/jobs/cancel", cancel(page),
		basicAuth, "Content-Type: text/plain;charset=UTF-8", "Origin: "+s.http.URL, "Sec-Fetch-Site: same-origin")
	require.Equal(t, http.StatusOK, code, resp)
	require.Equal(t, rivertype.JobStateCancelled, jobState(t, s, page))

	// An older browser: Origin only, matching the Host.
	code, resp = s.send(t, http.MethodPost, "/riverui/api/jobs/cancel", cancel(older),
		basicAuth, "Content-Type: application/json", "Origin: "+s.http.URL)
	require.Equal(t, http.StatusOK, code, resp)
	require.Equal(t, rivertype.JobStateCancelled, jobState(t, s, older))

	// A script: bearer token, no browser headers.
	code, resp = s.send(t, http.MethodPost, "/riverui/api/jobs/cancel", cancel(script), adminAuth)
	require.Equal(t, http.StatusOK, code, resp)
	require.Equal(t, rivertype.JobStateCancelled, jobState(t, s, script))

	// A wrong bearer token is still a failed login, not a way past the origin check.
	other := scheduledJob(t, s, "com.example.other")
	code, _ = s.send(t, http.MethodPost, "/riverui/api/jobs/cancel", cancel(other), "Authorization: Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, rivertype.JobStateScheduled, jobState(t, s, other))
}
