-- +goose Up
-- How many of a sweep's verify_repo checks River gave up on (discarded after their attempts,
-- or cancelled), counted when the sweep finished: their accounts keep what the index had.
ALTER TABLE account_sweeps ADD COLUMN checks_given_up BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE account_sweeps DROP COLUMN checks_given_up;
