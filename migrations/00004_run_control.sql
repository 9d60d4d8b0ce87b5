-- +goose Up
-- Run control: a run can be cancelled, and a collection's rate needs when its paging began.
ALTER TABLE backfill_runs ADD COLUMN cancelled_at TIMESTAMPTZ;
ALTER TABLE backfill_progress ADD COLUMN first_page_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE backfill_progress DROP COLUMN first_page_at;
ALTER TABLE backfill_runs DROP COLUMN cancelled_at;
