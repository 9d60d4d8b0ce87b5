-- +goose Up
-- Why each sweep began: 'gap' (a gap in the stream), 'operator' (colindex sweep, POST
-- /admin/sweeps) or 'backfill' (pages of listReposByCollection were written after the last
-- sweep began to walk the index: a source such as bsky.network still lists accounts deleted
-- long ago, and only a sweep asks the relay about them).
ALTER TABLE account_sweeps ADD COLUMN reason TEXT NOT NULL DEFAULT 'operator';
UPDATE account_sweeps SET reason = 'gap' WHERE gap_id IS NOT NULL;
-- When the sweep began to walk the index's own accounts, saved before its first read of them:
-- a page written before then is in that walk.
ALTER TABLE account_sweeps ADD COLUMN unlisted_began_at TIMESTAMPTZ;
UPDATE account_sweeps SET unlisted_began_at = walked_at WHERE unlisted_cursor <> '' OR unlisted_at IS NOT NULL;

-- +goose Down
ALTER TABLE account_sweeps DROP COLUMN unlisted_began_at;
ALTER TABLE account_sweeps DROP COLUMN reason;
