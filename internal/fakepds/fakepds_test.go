package fakepds

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/await"
)

func directory(t *testing.T, s *Server) *identity.BaseDirectory {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	s.WebTransport(tr)
	return &identity.BaseDirectory{
		PLCURL: s.PLC.URL, HTTPClient: http.Client{Transport: tr, Timeout: 5 * time.Second},
		SkipHandleVerification: true,
	}
}

// indigo's directory resolves both DID methods through the stand-in to its PDS: did:plc at
// the PLC URL, did:web over https on port 443 (the transport dials Web instead).
func TestIndigoResolvesBothMethodsToThePDS(t *testing.T) {
	t.Parallel()
	s := New()
	t.Cleanup(s.Close)
	s.AddAccount("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "app.bsky.feed.post")
	s.AddAccount("did:web:alice.example.com", "app.bsky.feed.like")
	dir := directory(t, s)
	for _, did := range []string{"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:web:alice.example.com"} {
		t.Run(did, func(t *testing.T) {
			t.Parallel()
			ident, err := dir.LookupDID(context.Background(), syntax.DID(did))
			require.NoError(t, err)
			require.Equal(t, s.PDS.URL, ident.PDSEndpoint())
		})
	}
	t.Run("an unknown DID is not in the directory", func(t *testing.T) {
		t.Parallel()
		_, err := dir.LookupDID(context.Background(), "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb")
		require.ErrorIs(t, err, identity.ErrDIDNotFound)
	})
}

func get(t *testing.T, s *Server, method string, q url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(s.PDS.URL + "/xrpc/" + method + "?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// The PDS answers from the repo map, and each fault as a real PDS would.
func TestPDSAnswersAndFaults(t *testing.T) {
	t.Parallel()
	s := New()
	t.Cleanup(s.Close)
	did := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	s.AddAccount(did, "app.bsky.feed.post", "app.bsky.feed.like")
	s.SetRecords(did, "app.bsky.feed.like", 0)

	list := func(coll string) (int, map[string]any) {
		return get(t, s, "com.atproto.repo.listRecords", url.Values{"repo": {did}, "collection": {coll}, "limit": {"1"}})
	}
	code, out := list("app.bsky.feed.post")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, out["records"], 1)
	code, out = list("app.bsky.feed.like")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, out["records"])
	require.NotNil(t, out["records"], "an empty list is still a list")

	code, out = get(t, s, "com.atproto.repo.describeRepo", url.Values{"repo": {did}})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"app.bsky.feed.post"}, out["collections"])
	require.Equal(t, did, out["did"])

	// One after another (not parallel): each sets the account's one fault.
	for f, name := range map[Fault]string{ServerError: "InternalServerError", RepoNotFound: "RepoNotFound",
		RepoDeactivated: "RepoDeactivated", RepoTakendown: "RepoTakendown", RepoSuspended: "RepoSuspended"} {
		t.Run(name, func(t *testing.T) {
			s.SetFault(did, f)
			code, out := get(t, s, "com.atproto.repo.listRecords", url.Values{"repo": {did}, "collection": {"app.bsky.feed.post"}, "limit": {"1"}})
			require.NotEqual(t, http.StatusOK, code)
			require.Equal(t, name, out["error"])
		})
	}
	s.SetFault(did, NoFault)
	code, _ = list("app.bsky.feed.post")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 9, s.Requests(did), "3 answers, 5 faults, 1 after the faults")

	code, out = get(t, s, "com.atproto.repo.describeRepo", url.Values{"repo": {"did:plc:cccccccccccccccccccccccc"}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "RepoNotFound", out["error"], "an account the PDS never had")
}

// A held request answers only after Release; a delayed one gives up with its client.
func TestHoldAndDelay(t *testing.T) {
	t.Parallel()
	s := New()
	t.Cleanup(s.Close)
	did := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	s.AddAccount(did, "app.bsky.feed.post")
	s.Hold()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(s.PDS.URL + "/xrpc/com.atproto.repo.describeRepo?repo=" + did)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	await.Until(t, 10*time.Second, "the held request to arrive", func() (bool, any) {
		n := s.Requests(did)
		return n == 1, fmt.Sprintf("%d requests", n)
	})
	select {
	case <-done:
		t.Fatal("a held request answered before Release")
	default:
	}
	s.Release()
	select {
	case code := <-done:
		require.Equal(t, http.StatusOK, code)
	case <-time.After(10 * time.Second):
		t.Fatal("a released request did not answer")
	}

	s.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.PDS.URL+"/xrpc/com.atproto.repo.describeRepo?repo="+did, nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the delay outlasts the client's deadline")
}
