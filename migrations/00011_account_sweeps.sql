-- +goose Up
-- A sweep of a relay's account list (com.atproto.sync.listRepos): what the relay holds about
-- every account, for what the index cannot learn from pages (bsky.network's
-- listReposByCollection never removes anything) and the stream did not tell it (a gap, or
-- events before the stream began). Statuses are applied page by page: deleted accounts are
-- removed, inactive ones hidden, active ones listed again (and re-learned from their PDS).
-- With revs_after set (a gap's sweep), every active account whose repo changed at or after it
-- (its rev, a TID, is a time) is re-learned from its PDS by a verify_repo check, tagged with
-- the sweep; the sweep finishes once its checks have run, and only then may its gap close.
CREATE TABLE account_sweeps (
    id BIGSERIAL PRIMARY KEY,
    relay TEXT NOT NULL,
    gap_id BIGINT REFERENCES firehose_gaps (id) ON DELETE CASCADE,
    revs_after TIMESTAMPTZ,
    cursor TEXT NOT NULL DEFAULT '',
    pages BIGINT NOT NULL DEFAULT 0,
    repos BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    statuses_changed BIGINT NOT NULL DEFAULT 0,
    accounts_removed BIGINT NOT NULL DEFAULT 0,
    checks_queued BIGINT NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    walked_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX account_sweeps_gap ON account_sweeps (gap_id);

-- When the stream last stood at the gap's cursor (the follower's last save of it): the events
-- the gap lost came after it, so the repos they changed have revs about as late.
ALTER TABLE firehose_gaps ADD COLUMN live_until TIMESTAMPTZ;

-- +goose Down
ALTER TABLE firehose_gaps DROP COLUMN live_until;
DROP TABLE account_sweeps;
