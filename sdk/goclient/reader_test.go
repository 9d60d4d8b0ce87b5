package goclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/api"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testlog"
	"github.com/colindex/colindex/internal/testrelay"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/sdk/goclient"
)

// readerStack is a colindex's public surface (real Postgres, real RocksDB) behind an httptest
// server, and a client for it.
type readerStack struct {
	index  *rocksindex.Index
	client *goclient.ClientWithResponses
}

func newReaderStack(t *testing.T) *readerStack {
	t.Helper()
	log := testlog.New(t) // first, so that its cleanup runs after the server's
	index, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(index.Close)
	srv := &api.Server{
		Index: index, Pool: pgtest.NewPool(t), AdminPassword: "unused-admin-password",
		Logger: log,
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client, err := goclient.NewClientWithResponses(hs.URL)
	require.NoError(t, err)
	return &readerStack{index: index, client: client}
}

func readAll(t *testing.T, seq func(func(string, error) bool)) []string {
	t.Helper()
	var out []string
	for did, err := range seq {
		require.NoError(t, err)
		out = append(out, did)
	}
	return out
}

func TestReposByCollectionReadsToTheEndInDIDOrder(t *testing.T) {
	t.Parallel()
	s := newReaderStack(t)
	ctx := context.Background()
	// Two collections sharing a third of their DIDs, added out of order.
	a := append(testrelay.DIDs("a", 700), testrelay.DIDs("shared", 350)...)
	b := append(testrelay.DIDs("b", 400), testrelay.DIDs("shared", 350)...)
	slices.Reverse(a)
	require.NoError(t, s.index.Add("com.example.reader.a", a))
	require.NoError(t, s.index.Add("com.example.reader.b", b))
	wantA := slices.Sorted(slices.Values(a))
	union := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a), b...))))
	require.Len(t, union, 700+400+350)

	for _, pageSize := range []int{0, 1, 97, 1050, 10000} {
		t.Run(fmt.Sprint("page size ", pageSize), func(t *testing.T) {
			got := readAll(t, s.client.ReposByCollection(ctx, pageSize, "com.example.reader.a"))
			require.Equal(t, wantA, got, "every DID of the collection, once each, in DID order")
		})
	}
	require.Equal(t, union, readAll(t, s.client.ReposByCollection(ctx, 100, "com.example.reader.a", "com.example.reader.b")),
		"the union: each DID once, in DID order")
	require.Empty(t, readAll(t, s.client.ReposByCollection(ctx, 100, "com.example.reader.none")))

	// Breaking out of the loop stops paging (a second page would have been fetched otherwise).
	var first []string
	for did, err := range s.client.ReposByCollection(ctx, 10, "com.example.reader.a") {
		require.NoError(t, err)
		if first = append(first, did); len(first) == 15 {
			break
		}
	}
	require.Equal(t, wantA[:15], first)
}

func TestReposByCollectionYieldsTheServersError(t *testing.T) {
	t.Parallel()
	s := newReaderStack(t)
	ctx := context.Background()
	for name, collections := range map[string][]string{
		"not an NSID":   {"not-an-nsid"},
		"no collection": nil,
		"too many (21)": func() []string {
			var out []string
			for i := range 21 {
				out = append(out, fmt.Sprintf("com.example.c%d", i))
			}
			return out
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			n := 0
			var last error
			for did, err := range s.client.ReposByCollection(ctx, 0, collections...) {
				require.Empty(t, did)
				last = err
				n++
			}
			require.Equal(t, 1, n, "one error, then the end")
			var rerr *goclient.ResponseError
			require.True(t, errors.As(last, &rerr), "%v", last)
			require.Equal(t, http.StatusBadRequest, rerr.StatusCode)
			require.Equal(t, "InvalidRequest", rerr.Name)
			require.NotEmpty(t, rerr.Message)
		})
	}
}

// A server that keeps answering the same cursor would be paged forever: the reader stops.
func TestReposByCollectionStopsOnARepeatedCursor(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"repos":[{"did":"did:plc:aaa"}],"cursor":"did:plc:aaa"}`)
	}))
	t.Cleanup(hs.Close)
	client, err := goclient.NewClientWithResponses(hs.URL)
	require.NoError(t, err)
	var dids []string
	var last error
	for did, err := range client.ReposByCollection(context.Background(), 1, "com.example.loop") {
		if err != nil {
			last = err
			continue
		}
		dids = append(dids, did)
	}
	require.ErrorIs(t, last, goclient.ErrCursorRepeated)
	require.Equal(t, []string{"did:plc:aaa", "did:plc:aaa"}, dids)
}

// Reading a collection to its end needs no password.
func ExampleClientWithResponses_ReposByCollection() {
	c, err := goclient.NewClientWithResponses("http://127.0.0.1:2510")
	if err != nil {
		panic(err)
	}
	for did, err := range c.ReposByCollection(context.Background(), 1000, "app.bsky.feed.post") {
		if err != nil {
			fmt.Println("read failed:", err)
			return
		}
		fmt.Println(did)
	}
}
