-- +goose Up
-- source_generation counts the moves of a collection to another source. A page records it
-- when it reads the row and commits only if it is unchanged, so a page fetched from the old
-- source never moves the cursor after a move, whatever cursor the move kept.
ALTER TABLE backfill_progress ADD COLUMN source_generation BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE backfill_progress DROP COLUMN source_generation;
