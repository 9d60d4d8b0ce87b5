-- +goose Up
-- A gap in the stream: the relay answered #info OutdatedCursor, so the events after the
-- follower's cursor (after_seq) up to the oldest the relay still had were never applied. The
-- index may miss adds from them until every collection is paged again from a source that has
-- seen them (the repair: a run with refresh, repair_run_id); removals and status changes in
-- them are lost for good (a source such as bsky.network never removes anything). A gap
-- reported again from the same cursor (the follower crashed before its next save) is the same
-- gap while its refresh has not started; once one has, the new report gets a row of its own:
-- the relay may have dropped more events since, some after that refresh's pages were fetched.
CREATE TABLE firehose_gaps (
    id BIGSERIAL PRIMARY KEY,
    relay TEXT NOT NULL,
    after_seq BIGINT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    detected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    repair_run_id BIGINT REFERENCES backfill_runs (id),
    repaired_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX firehose_gaps_unrepaired ON firehose_gaps (relay, after_seq) WHERE repair_run_id IS NULL;

-- +goose Down
DROP TABLE firehose_gaps;
