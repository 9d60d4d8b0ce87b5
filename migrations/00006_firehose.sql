-- +goose Up
-- Where the firehose consumer stands on each relay it follows: seq is the last event whose
-- effects are durable in the index, and every event at or below it is too (a low watermark:
-- events finish out of order across accounts). A restart resumes the stream after it.
CREATE TABLE firehose_cursor (
    relay TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE firehose_cursor;
