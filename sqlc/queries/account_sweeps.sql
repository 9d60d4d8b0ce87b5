-- name: SweepInsert :one
-- A new sweep; for a gap, the gap's one (a gap reported again keeps its sweep).
INSERT INTO account_sweeps (relay, gap_id, revs_after, reason)
VALUES (@relay, sqlc.narg(gap_id)::bigint, sqlc.narg(revs_after)::timestamptz, @reason)
ON CONFLICT (gap_id) DO UPDATE SET relay = account_sweeps.relay
RETURNING id;

-- name: SweepGet :one
SELECT * FROM account_sweeps WHERE id = @id;

-- name: SweepOfGap :one
SELECT * FROM account_sweeps WHERE gap_id = @gap_id;

-- name: SweepAdvance :execrows
-- One page applied: its cursor and counts, and walked_at once it was the last page. Only from
-- the cursor the page was asked with, so a page applied twice (a crash before this) counts once.
UPDATE account_sweeps
SET cursor = @next_cursor,
    pages = pages + 1,
    repos = repos + @repos,
    skipped = skipped + @skipped,
    statuses_changed = statuses_changed + @statuses_changed,
    accounts_removed = accounts_removed + @accounts_removed,
    checks_queued = checks_queued + @checks_queued,
    last_error = '',
    failures = 0,
    walked_at = CASE WHEN @walked::bool THEN now() END
WHERE id = @id AND cursor = @cursor AND walked_at IS NULL;

-- name: SweepAdvanceUnlisted :execrows
-- One stretch of the index's accounts walked: the accounts asked about and what their answers
-- changed, and unlisted_at once the walk is through. Only from the cursor it began at.
UPDATE account_sweeps
SET unlisted_cursor = @next_cursor,
    unlisted_asked = unlisted_asked + @asked,
    skipped = skipped + @skipped,
    statuses_changed = statuses_changed + @statuses_changed,
    accounts_removed = accounts_removed + @accounts_removed,
    last_error = '',
    failures = 0,
    unlisted_at = CASE WHEN @done::bool THEN now() END
WHERE id = @id AND unlisted_cursor = @cursor AND walked_at IS NOT NULL AND unlisted_at IS NULL;

-- name: SweepFailed :exec
UPDATE account_sweeps SET last_error = @last_error, failures = failures + 1 WHERE id = @id;

-- name: SweepFinish :execrows
UPDATE account_sweeps SET finished_at = now(), checks_given_up = @checks_given_up
WHERE id = @id AND unlisted_at IS NOT NULL AND finished_at IS NULL;

-- name: SweepsRecent :many
-- Every unfinished sweep, and the latest @recent whatever their state, newest first.
SELECT * FROM account_sweeps
WHERE finished_at IS NULL OR id IN (SELECT s.id FROM account_sweeps s ORDER BY s.id DESC LIMIT @recent::int)
ORDER BY id DESC;

-- name: SweepsDeleteAll :exec
-- reopen-all: a sweep's counts and checks were about the replaced index.
DELETE FROM account_sweeps;

-- name: SweepUnlistedBegin :one
-- Saved before the walk of the index's accounts first reads them (walkBegins).
UPDATE account_sweeps SET unlisted_began_at = COALESCE(unlisted_began_at, now()) WHERE id = @id
RETURNING unlisted_began_at::timestamptz;

-- name: SweepsUnfinished :many
-- The unfinished sweeps: for a retry, and for the sweep after the backfill (the relay each
-- sweeps, and whether it has begun to walk the index's accounts).
SELECT id, relay, unlisted_began_at FROM account_sweeps WHERE finished_at IS NULL ORDER BY id;

-- name: SweepsWalkedLast :many
-- When the last finished sweep of each relay began to walk the index's accounts.
SELECT relay, max(unlisted_began_at)::timestamptz AS began
FROM account_sweeps
WHERE finished_at IS NOT NULL AND unlisted_began_at IS NOT NULL
GROUP BY relay;

-- name: PagesWrittenLast :one
-- When a page last wrote to the index, of any collection (written is false: never).
SELECT (max(pages_written_at) IS NOT NULL)::bool AS written, COALESCE(max(pages_written_at), now())::timestamptz AS at
FROM backfill_progress;

-- name: SweepAfterBackfillLock :exec
-- Serialises the watcher's decision with the chains that complete meanwhile (their insert of
-- a watcher must not be taken for a duplicate of one that has already decided).
SELECT pg_advisory_xact_lock(@lock_key::bigint);
