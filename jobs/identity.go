package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/colindex/colindex/rocksindex"
)

// ErrIndexMismatch is returned when the index is not the one the database describes.
var ErrIndexMismatch = errors.New("the index is not the one this database describes")

// BindIndex ties the database to the index, or refuses when they do not belong together.
// Progress rows claim DIDs that live in one index: served with another (a wiped directory, a
// different --index-dir, a second serve process with its own index) they would claim what
// the index lacks, and every read would quietly miss it.
//
//   - A database bound to no index adopts this one (a first start, or a database from before
//     identities existed, with the index it was used with).
//   - A database bound to this index: nothing to do.
//   - A database bound to another index, while its rows claim nothing and no stream cursor
//     was saved: adopts this one.
//   - Otherwise ErrIndexMismatch, saying how to recover (ReopenAll).
func BindIndex(ctx context.Context, pool *pgxpool.Pool, index *rocksindex.Index, indexDir string) error {
	id, _, err := index.EnsureID()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("bind index: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := queries.IndexIdentityClaim(ctx, tx, id); err != nil {
		return fmt.Errorf("record index identity: %w", err)
	}
	// Locked until commit: a page committing now finishes first, and is counted below.
	bound, err := queries.IndexIdentityGetForUpdate(ctx, tx)
	if err != nil {
		return fmt.Errorf("read index identity: %w", err)
	}
	if bound == id {
		return tx.Commit(ctx)
	}
	sum, err := queries.ProgressSummary(ctx, tx)
	if err != nil {
		return fmt.Errorf("read progress: %w", err)
	}
	// A saved stream cursor claims too: the stream's adds, removals and account deletions
	// before it are in the other index.
	followed, err := queries.FirehoseCursorCount(ctx, tx)
	if err != nil {
		return fmt.Errorf("read firehose cursor: %w", err)
	}
	if sum.Imported == 0 && sum.Paged == 0 && followed == 0 {
		if err := queries.IndexIdentitySet(ctx, tx, id); err != nil {
			return fmt.Errorf("record index identity: %w", err)
		}
		return tx.Commit(ctx)
	}
	return fmt.Errorf("%w: the index in %s is %s, but the database was built with index %s: its %d collections "+
		"claim %d DIDs, and the firehose was followed into it (%d cursor). Point --index-dir (COLINDEX_INDEX_DIR) at "+
		"that index; or, to rebuild into this one, stop colindex and run `colindex reopen-all --index-dir %s`, then "+
		"start a backfill: every collection is paged again from the beginning",
		ErrIndexMismatch, indexDir, id, bound, sum.Collections, sum.Imported, followed, indexDir)
}

// ReopenAll binds the database to the index and reopens every collection: cursors and counts
// go back to zero and the next start pages everything again, into this index; the stream's
// saved cursor is dropped, so the follower starts again at the live tail. It is the way
// back after an index was lost, wiped or replaced. It returns how many collections it reopened.
func ReopenAll(ctx context.Context, pool *pgxpool.Pool, index *rocksindex.Index) (int64, error) {
	id, _, err := index.EnsureID()
	if err != nil {
		return 0, err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("reopen: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	n, err := queries.ProgressReopenAll(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("reopen collections: %w", err)
	}
	if err := queries.IndexIdentitySet(ctx, tx, id); err != nil {
		return 0, fmt.Errorf("record index identity: %w", err)
	}
	if err := queries.FirehoseCursorDeleteAll(ctx, tx); err != nil {
		return 0, fmt.Errorf("reset firehose cursor: %w", err)
	}
	if err := queries.GapsDeleteAll(ctx, tx); err != nil {
		return 0, fmt.Errorf("forget the stream's gaps: %w", err)
	}
	if err := queries.SweepsDeleteAll(ctx, tx); err != nil {
		return 0, fmt.Errorf("forget the account sweeps: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("reopen: %w", err)
	}
	return n, nil
}

// checkIndexBound fails when, inside a page's transaction, the database is bound to another
// index than the one the page was written to: a process started before the database was
// re-bound must not move cursors for DIDs the database's index never received.
func checkIndexBound(ctx context.Context, tx pgx.Tx, index *rocksindex.Index) error {
	id, err := index.ID()
	if err != nil {
		return err
	}
	bound, err := queries.IndexIdentityGetForShare(ctx, tx)
	if errors.Is(err, pgx.ErrNoRows) {
		bound = ""
	} else if err != nil {
		return fmt.Errorf("read index identity: %w", err)
	}
	if bound != id {
		return fmt.Errorf("%w: this process writes index %s, the database is bound to %q; restart colindex", ErrIndexMismatch, id, bound)
	}
	return nil
}
