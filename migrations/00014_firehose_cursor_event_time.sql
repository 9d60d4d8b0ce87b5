-- +goose Up
-- The relay's time of the event at the cursor (its `time` field): when the stream stood there.
-- A gap's rev floor is read from it (jobs/gaps.go): the follower's last save of the cursor is
-- later by however far it lagged, hours in a catch-up, and the floor with it. Never later than
-- updated_at where it is read: a relay's clock is its own.
ALTER TABLE firehose_cursor ADD COLUMN event_time TIMESTAMPTZ;

-- +goose Down
ALTER TABLE firehose_cursor DROP COLUMN event_time;
