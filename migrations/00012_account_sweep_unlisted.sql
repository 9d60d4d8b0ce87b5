-- +goose Up
-- A relay such as indigo's lists only its active accounts, so once a sweep has walked the
-- list it walks the index's accounts (in DID order, from unlisted_cursor) and asks the relay
-- about each one it did not list: deleted, taken down, deactivated, or unknown to it.
-- unlisted_at is when that walk ended; unlisted_asked how many accounts it asked about.
ALTER TABLE account_sweeps ADD COLUMN unlisted_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE account_sweeps ADD COLUMN unlisted_asked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE account_sweeps ADD COLUMN unlisted_at TIMESTAMPTZ;
-- failures counts the attempts that failed in a row (a relay down): the retry's backoff
-- grows with it, not with every error of a sweep that may run for hours.
ALTER TABLE account_sweeps ADD COLUMN failures INT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE account_sweeps DROP COLUMN failures;
ALTER TABLE account_sweeps DROP COLUMN unlisted_at;
ALTER TABLE account_sweeps DROP COLUMN unlisted_asked;
ALTER TABLE account_sweeps DROP COLUMN unlisted_cursor;
