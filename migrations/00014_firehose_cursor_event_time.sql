-- +goose Up
-- When the stream stood at the cursor: the median of the `time` fields (each its PDS's clock,
-- passed on by the relay) of the events the follower passed since its previous save.
-- A gap's rev floor is read from it (jobs/gaps.go): the follower's last save of the cursor is
-- later by however far it lagged, hours in a catch-up, and the floor with it. Never later than
-- updated_at where it is read: a PDS's clock is its own.
ALTER TABLE firehose_cursor ADD COLUMN event_time TIMESTAMPTZ;

-- +goose Down
ALTER TABLE firehose_cursor DROP COLUMN event_time;
