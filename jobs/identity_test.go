package jobs

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/rocksindex"
)

func openIndex(t *testing.T) *rocksindex.Index {
	t.Helper()
	ix, err := rocksindex.Open(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(ix.Close)
	return ix
}

// The database and the index are bound together: the same index passes, a wiped or other
// index is refused while the database claims DIDs, with the way out in the message, and
// reopen-all rebinds and starts every collection over.
func TestIndexIdentityBindsDatabaseAndIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	first := openIndex(t)
	require.NoError(t, BindIndex(ctx, pool, first, "/first"))
	require.NoError(t, BindIndex(ctx, pool, first, "/first"), "the same index again")

	// A database whose rows claim nothing yet may move to another index.
	fresh := openIndex(t)
	require.NoError(t, BindIndex(ctx, pool, fresh, "/fresh"))
	bound, err := queries.IndexIdentityGet(ctx, pool)
	require.NoError(t, err)
	freshID, err := fresh.ID()
	require.NoError(t, err)
	require.Equal(t, freshID, bound)

	// Once the rows claim DIDs, another index is refused.
	require.NoError(t, BindIndex(ctx, pool, first, "/first"))
	_, err = pool.Exec(ctx, `INSERT INTO backfill_progress (collection, source, imported_count, pages_fetched, completed_at, pages_written_at)
		VALUES ('com.example.a', 'bsky.network', 40, 1, now(), now())`)
	require.NoError(t, err)
	wiped := openIndex(t)
	err = BindIndex(ctx, pool, wiped, "/data/index")
	require.ErrorIs(t, err, ErrIndexMismatch)
	require.ErrorContains(t, err, "claim 40 DIDs")
	require.ErrorContains(t, err, "colindex reopen-all --index-dir /data/index")

	n, err := ReopenAll(ctx, pool, wiped)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.NoError(t, BindIndex(ctx, pool, wiped, "/data/index"))
	row, err := queries.ProgressGet(ctx, pool, "com.example.a")
	require.NoError(t, err)
	require.Nil(t, row.CompletedAt, "paged again by the next start")
	require.Zero(t, row.ImportedCount)
	require.Empty(t, row.Cursor)
	require.Nil(t, row.PagesWrittenAt, "no page has written to the new index: nothing for a sweep to follow")
}

// A page written to an index the database is no longer bound to cannot move the cursor.
func TestPageCommitChecksTheIndexBinding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	mine, other := openIndex(t), openIndex(t)
	require.NoError(t, BindIndex(ctx, pool, mine, "/mine"))
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	require.NoError(t, checkIndexBound(ctx, tx, mine))
	require.ErrorIs(t, checkIndexBound(ctx, tx, other), ErrIndexMismatch)
}

// A database that followed the firehose into an index claims it, even with no page paged:
// another index is refused; reopen-all drops the stream's cursor with everything else.
func TestAStreamCursorBindsTheIndexToo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	require.NoError(t, BindIndex(ctx, pool, openIndex(t), "/first"))
	_, err := pool.Exec(ctx, `INSERT INTO firehose_cursor (relay, seq) VALUES ('wss://relay.example', 42)`)
	require.NoError(t, err)
	other := openIndex(t)
	err = BindIndex(ctx, pool, other, "/other")
	require.ErrorIs(t, err, ErrIndexMismatch)
	require.ErrorContains(t, err, "the firehose was followed into it")

	_, err = ReopenAll(ctx, pool, other)
	require.NoError(t, err)
	n, err := queries.FirehoseCursorCount(ctx, pool)
	require.NoError(t, err)
	require.Zero(t, n, "the stream starts again at the live tail, into the new index")
	require.NoError(t, BindIndex(ctx, pool, other, "/other"))
}
