-- +goose Up
-- What an operator needs beyond zlay's columns to see a collection's health:
-- how many entries were rejected, how many pages were committed, the last failure and when
-- the chain last moved.
ALTER TABLE backfill_progress
    ADD COLUMN skipped_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN pages_fetched BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_error TEXT NOT NULL DEFAULT '',
    ADD COLUMN last_page_at TIMESTAMPTZ,
    ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- +goose Down
ALTER TABLE backfill_progress
    DROP COLUMN skipped_count,
    DROP COLUMN pages_fetched,
    DROP COLUMN last_error,
    DROP COLUMN last_page_at,
    DROP COLUMN updated_at;
