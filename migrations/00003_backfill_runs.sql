-- +goose Up
-- One row per accepted POST /admin/backfill-collections: when it started, what discovery
-- found, and which discovery source failed (a failed source does not stop the run).
CREATE TABLE backfill_runs (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    discovered INTEGER NOT NULL,
    enqueued INTEGER NOT NULL,
    lexicon_list_error TEXT NOT NULL DEFAULT '',
    index_scan_error TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE backfill_runs;
