-- +goose Up
-- One row per collection: where its page chain stands on the source it is paged from.
-- The table is zlay's, column for column, so existing operators' queries keep working.
CREATE TABLE backfill_progress (
    collection TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    cursor TEXT NOT NULL DEFAULT '',
    imported_count BIGINT NOT NULL DEFAULT 0,
    completed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE backfill_progress;
