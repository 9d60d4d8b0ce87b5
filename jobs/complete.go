package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CollectionComplete reports whether this colindex has finished backfilling collection: its
// progress row exists, has completed_at set, and is not being reset (a reset marks the row
// complete while it removes the collection's DIDs). Completed collections are skipped by later
// runs, so a complete collection's DIDs are a fixed set until someone resets it. The XRPC
// endpoint tells downstream colindexes so (source.BackfillHeader).
func (b *Backfill) CollectionComplete(ctx context.Context, collection string) (bool, error) {
	row, err := queries.ProgressGet(ctx, b.Pool, collection)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load %s: %w", collection, err)
	}
	return row.CompletedAt != nil && row.ResettingSince == nil, nil
}
