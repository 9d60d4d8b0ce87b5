-- +goose Up
-- What opened a gap: outdated_cursor (the relay's #info OutdatedCursor), future_cursor (the
-- relay's FutureCursor: its sequence was reset, so what the old one had after the cursor is
-- gone), cursor_move (an operator's move that skips events). A move after a FutureCursor skips
-- events in any direction, and is told so by the future_cursor row.
ALTER TABLE firehose_gaps ADD COLUMN kind TEXT NOT NULL DEFAULT 'outdated_cursor';

-- +goose Down
ALTER TABLE firehose_gaps DROP COLUMN kind;
