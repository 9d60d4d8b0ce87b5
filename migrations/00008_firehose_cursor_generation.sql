-- +goose Up
-- An operator can move the firehose cursor (PUT /admin/firehose/cursor): back, to replay
-- events (adds are idempotent, removals final), or forward or to the live tail, when the relay
-- answers FutureCursor because its sequence was reset. Each move takes a new generation from
-- the sequence; a follower saves its cursor only while the generation it started from is
-- current, so a running follower can never write over a move: it notices, stops, and starts
-- again from the moved cursor. A sequence rather than a per-row counter keeps generations
-- distinct even when a reopen deletes the rows.
CREATE SEQUENCE firehose_cursor_generation;
ALTER TABLE firehose_cursor ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE firehose_cursor DROP COLUMN generation;
DROP SEQUENCE firehose_cursor_generation;
