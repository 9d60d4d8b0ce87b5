package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// A #sync re-learns the account from describeRepo, both ways: a pair the PDS no longer
// lists goes (with a tombstone), a collection the index lacks comes in (clearing an old
// tombstone: the PDS's own list is evidence), the rest stays, other accounts are untouched.
func TestVerifyRepoReconcilesBothWays(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{})
	b.add(t, alice, post, like)
	b.add(t, bob, like)
	_, err := b.index.RemovePairs([]rocksindex.Pair{{Collection: block, DID: alice}})
	require.NoError(t, err)
	require.True(t, b.removed(t, block, alice))
	b.net.AddAccount(alice, post, block) // like is gone, block is back

	require.NoError(t, b.backfill.EnqueueVerifyRepo(context.Background(), alice))
	b.waitJobs(t, VerifyRepoKind, "the check completes", allIn(rivertype.JobStateCompleted))

	require.Equal(t, []string{post, block}, b.collectionsOf(t, alice))
	require.True(t, b.removed(t, like, alice))
	require.False(t, b.removed(t, block, alice))
	listed, err := b.index.ListRepos(block, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{alice}, listed)
	require.Equal(t, []string{like}, b.collectionsOf(t, bob))
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	remove, add := reconcile(alice, []string{post, like}, []string{post, block, block, "not an nsid", ""})
	require.Equal(t, []rocksindex.Pair{{Collection: like, DID: alice}}, remove)
	require.Equal(t, []rocksindex.Pair{{Collection: block, DID: alice}}, add, "once, and only valid NSIDs")
	remove, add = reconcile(alice, nil, nil)
	require.Empty(t, remove)
	require.Empty(t, add)
}

// While a check is live and not started, more deletes in the collection add no job. While
// it runs (it may have asked the PDS before the newest delete), one follow-up queues behind
// it, and the deletes after that add none.
func TestVerifyEnqueueIsUniqueWhileLive(t *testing.T) {
	t.Parallel()
	t.Run("not started", func(t *testing.T) {
		t.Parallel()
		b := setupVerify(t, verifyOpts{noStart: true})
		ctx := context.Background()
		for range 3 {
			require.NoError(t, b.backfill.EnqueueVerifyCollection(ctx, alice, post))
			require.NoError(t, b.backfill.EnqueueVerifyRepo(ctx, alice))
		}
		require.NoError(t, b.backfill.EnqueueVerifyCollection(ctx, alice, like))
		require.NoError(t, b.backfill.EnqueueVerifyCollection(ctx, bob, post))
		require.Len(t, b.jobs(t, VerifyCollectionKind), 3, "one per (did, collection)")
		require.Len(t, b.jobs(t, VerifyRepoKind), 1, "one per did")
	})
	t.Run("running", func(t *testing.T) {
		t.Parallel()
		b := setupVerify(t, verifyOpts{})
		ctx := context.Background()
		b.add(t, alice, post)
		b.net.AddAccount(alice, post)
		b.net.Hold()
		require.NoError(t, b.backfill.EnqueueVerifyCollection(ctx, alice, post))
		first := b.waitJobs(t, VerifyCollectionKind, "the check is running", allIn(rivertype.JobStateRunning))[0]
		require.Eventually(t, func() bool { return b.net.Requests(alice) == 1 }, 10*time.Second, 10*time.Millisecond)

		for range 3 {
			require.NoError(t, b.backfill.EnqueueVerifyCollection(ctx, alice, post))
		}
		rows := b.jobs(t, VerifyCollectionKind)
		require.Len(t, rows, 2, "the running check and one follow-up")
		require.Equal(t, rivertype.JobStateScheduled, rows[1].State, "the follow-up waits behind the running check")
		var args VerifyCollectionArgs
		require.NoError(t, json.Unmarshal(rows[1].EncodedArgs, &args))
		require.Equal(t, VerifyCollectionArgs{DID: alice, Collection: post, After: first.ID}, args)

		b.net.Release()
		b.waitJobs(t, VerifyCollectionKind, "both checks complete", func(rows []*rivertype.JobRow) bool {
			return len(rows) == 2 && allIn(rivertype.JobStateCompleted)(rows)
		})
		require.Equal(t, 2, b.net.Requests(alice), "the follow-up asked the PDS again")
	})
}

// did:web resolves at https://{host}/.well-known/did.json. indigo's directory always uses
// https on port 443 (no http base, no port), so the test routes example.com hosts to the
// stand-in's TLS server and trusts its certificate (verifyTransport).
func TestVerifyResolvesDIDWeb(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{webTransport: true})
	const carol = "did:web:carol.example.com"
	b.add(t, carol, post, like)
	b.net.AddAccount(carol, post)

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), carol, like))
	b.waitJobs(t, VerifyCollectionKind, "the check completes", allIn(rivertype.JobStateCompleted))
	require.Equal(t, []string{post}, b.collectionsOf(t, carol))
	require.Equal(t, 1, b.net.Requests(carol))
}

// By default a DID document cannot send colindex to a loopback or private address: the
// operator's PLC directory is reached (it is exempt), the PDS it names on 127.0.0.1 is not,
// and the check fails without removing anything.
func TestVerifyRefusesPrivatePDSAddresses(t *testing.T) {
	t.Parallel()
	b := setupVerify(t, verifyOpts{strict: true})
	b.add(t, alice, post)
	b.net.AddAccount(alice) // no post: only the refusal keeps the pair

	require.NoError(t, b.backfill.EnqueueVerifyCollection(context.Background(), alice, post))
	rows := b.waitJobs(t, VerifyCollectionKind, "the attempt fails", allIn(rivertype.JobStateRetryable))
	require.Contains(t, rows[0].Errors[0].Error, "not a public IP address")
	require.Zero(t, b.net.Requests(alice))
	require.Equal(t, []string{post}, b.collectionsOf(t, alice))
}

// Answers are capped (indigo reads DID documents whole) and redirects stay on their origin.
func TestVerifyHTTPCapsAndRedirects(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", maxPDSBody+1)))
		case "/exact":
			_, _ = w.Write([]byte(strings.Repeat("x", maxPDSBody)))
		case "/away":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/here":
			http.Redirect(w, r, "/exact", http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	client := newVerifyHTTP(verifyHTTPOptions{timeout: 10 * time.Second, allowPrivate: true})
	read := func(path string) (int, error) {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var n int
		buf := make([]byte, 64<<10)
		for {
			m, err := resp.Body.Read(buf)
			n += m
			if err != nil {
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				return n, err
			}
		}
	}
	_, err := read("/big")
	require.ErrorIs(t, err, errBodyTooLarge)
	n, err := read("/here")
	require.NoError(t, err, "a same-origin redirect is followed")
	require.Equal(t, maxPDSBody, n, "an answer at the cap is read whole")
	_, err = read("/away")
	require.ErrorIs(t, err, source.ErrCrossHostRedirect)
}
