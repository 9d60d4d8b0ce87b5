-- +goose Up
-- The index this database describes. Progress rows claim DIDs that live in one RocksDB
-- directory; the directory carries a random identity and this row records it, so a serve
-- pointed at another (or a wiped) index refuses to start instead of serving a lie.
CREATE TABLE index_identity (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    index_id TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A reset is a River job. reset_generation counts resets, so a reset's last step only
-- applies when no later reset began after it; resetting_since marks the row while its DIDs
-- leave the index, and reset_removed shows how far that has got.
ALTER TABLE backfill_progress
    ADD COLUMN reset_generation BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN resetting_since TIMESTAMPTZ,
    ADD COLUMN reset_removed BIGINT NOT NULL DEFAULT 0;

-- How many lexicon-list collections discovery left out because of the cap.
ALTER TABLE backfill_runs ADD COLUMN lexicon_list_dropped INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE backfill_runs DROP COLUMN lexicon_list_dropped;
ALTER TABLE backfill_progress
    DROP COLUMN reset_generation,
    DROP COLUMN resetting_since,
    DROP COLUMN reset_removed;
DROP TABLE index_identity;
