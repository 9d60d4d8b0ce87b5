-- +goose Up
-- When a page of the collection last wrote to the index (its transaction's start): unlike
-- last_page_at, which a refresh, a reset or a move clears for the status, this is cleared by
-- nothing but reopen-all (a new index, which no page has written yet). The sweep after the backfill compares it
-- with when the last sweep began to walk the index's accounts (jobs/sweep_after.go).
ALTER TABLE backfill_progress ADD COLUMN pages_written_at TIMESTAMPTZ;
UPDATE backfill_progress SET pages_written_at = last_page_at;

-- +goose Down
ALTER TABLE backfill_progress DROP COLUMN pages_written_at;
