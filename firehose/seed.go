package firehose

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/pgstore"
)

// A replica (docs/SCALING.md) copies its peer's index and follows the same relay. Its stream
// must begin no later than where the peer's index stood when the copy began, so that every
// event the copied pages may miss is replayed here; adds are idempotent and removals final,
// so replaying events the peer had already applied changes nothing.

// Relay is the relay's normalised base URL: the cursor's key, and what /_health shows.
func (f *Firehose) Relay() string { return f.relay }

// SeedCursor saves seq as the cursor to start from when none is saved yet, or when the saved
// one is the live tail (a move to it that no event has followed yet), and says whether it
// did. Call it before Run: any other saved cursor (a restart) wins.
func (f *Firehose) SeedCursor(ctx context.Context, seq int64) (bool, error) {
	n, err := queries.FirehoseCursorSeed(ctx, f.cfg.Pool, pgstore.FirehoseCursorSeedParams{Relay: f.relay, Seq: seq})
	if err != nil {
		return false, fmt.Errorf("seed the firehose cursor: %w", err)
	}
	return n == 1, nil
}

// SavedCursor is the cursor saved in Postgres for this relay, and whether there is one.
func (f *Firehose) SavedCursor(ctx context.Context) (int64, bool, error) {
	saved, err := queries.FirehoseCursorGet(ctx, f.cfg.Pool, f.relay)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read the firehose cursor: %w", err)
	}
	return saved.Seq, true, nil
}

// CaughtUp says whether the follower is connected, has a durable cursor and is not behind
// (behind: yield.go). A replica is ready only when it is.
func (f *Firehose) CaughtUp() bool {
	return f.st.connected.Load() && f.st.cursor.Load() >= 0 && !f.behind()
}
