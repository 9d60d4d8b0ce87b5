package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func basicHeader(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// requireSlowed checks that a request with this header is answered 429 with a Retry-After
// of at most one failedEvery.
func (s *stack) requireSlowed(t *testing.T, path, header string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.http.URL+path, nil)
	require.NoError(t, err)
	k, v, _ := strings.Cut(header, ": ")
	req.Header.Set(k, v)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s %s", path, header)
	wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After on %s", path)
	require.True(t, wait >= 1 && wait <= int(failedEvery.Seconds())+1, "Retry-After %d", wait)
}

// The incident: behind a reverse proxy every client shares one address, and eleven anonymous
// scrapes of /metrics used to lock the admin and Prometheus out. Requests without credentials
// are answered 401 but spend none of the address's allowance of wrong passwords.
func TestAnonymousRequestsNeverSlowTheRightPassword(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{failedLogins: DefaultFailedLogins})
	for i := range DefaultFailedLogins + 5 {
		for _, path := range []string{"/metrics", "/admin/backfill-collections", "/riverui/"} {
			code, _ := s.do(t, http.MethodGet, path)
			require.Equal(t, http.StatusUnauthorized, code, "anonymous request %d to %s", i, path)
		}
	}
	code, body := s.do(t, http.MethodGet, "/metrics", adminAuth)
	require.Equal(t, http.StatusOK, code, body)
	code, body = s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
	require.Equal(t, http.StatusOK, code, body)
	code, _ = s.do(t, http.MethodGet, "/riverui/", basicAuth)
	require.Equal(t, http.StatusOK, code)
	// Nothing was spent: the whole allowance of wrong passwords is still there.
	for i := range DefaultFailedLogins {
		code, _ := s.do(t, http.MethodGet, "/metrics", "Authorization: Bearer guess"+strconv.Itoa(i))
		require.Equal(t, http.StatusUnauthorized, code, "wrong password %d", i)
	}
	code, _ = s.do(t, http.MethodGet, "/metrics", "Authorization: Bearer one-too-many")
	require.Equal(t, http.StatusTooManyRequests, code)
}

// Once an address has spent its allowance, its wrong passwords are answered 429 with
// Retry-After, and the right password still gets in; a success does not refill the guesser's
// allowance either.
func TestRightPasswordPassesWhileWrongOnesAreSlowed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{failedLogins: DefaultFailedLogins})
	wrong := func(i int) string { return "Authorization: Bearer guess" + strconv.Itoa(i) }
	for i := range DefaultFailedLogins {
		code, _ := s.do(t, http.MethodGet, "/admin/backfill-collections", wrong(i))
		require.Equal(t, http.StatusUnauthorized, code, "wrong password %d", i)
	}
	s.requireSlowed(t, "/admin/backfill-collections", wrong(100))
	s.requireSlowed(t, "/metrics", basicHeader("prometheus", "stale"))

	for range 3 {
		code, body := s.do(t, http.MethodGet, "/admin/backfill-collections", adminAuth)
		require.Equal(t, http.StatusOK, code, body)
		code, _ = s.do(t, http.MethodGet, "/metrics", adminAuth)
		require.Equal(t, http.StatusOK, code)
		code, _ = s.do(t, http.MethodGet, "/riverui/", basicAuth)
		require.Equal(t, http.StatusOK, code)
	}
	s.requireSlowed(t, "/admin/backfill-collections", wrong(101))
}
