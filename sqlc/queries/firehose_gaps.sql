-- name: GapInsert :one
-- live_until is when the stream last stood at after_seq: given (a cursor move, whose
-- transaction has already overwritten the cursor), or the time of the events at the
-- saved cursor (never later than its save), or, unknown, when it was saved.
-- A new gap, or the one already recorded after the same cursor (inserted is false then): one
-- whose refresh has not started, or, for a FutureCursor, any (what it lost, the old sequence's
-- events after the cursor, was gone before it was first reported: a later report of it, after
-- a restart, loses nothing more).
WITH prior AS (
    SELECT g.id FROM firehose_gaps g
    WHERE g.relay = @relay AND g.after_seq = @after_seq
      AND (g.repair_run_id IS NULL OR (g.kind = 'future_cursor' AND @kind::text = 'future_cursor'))
    ORDER BY g.id
    LIMIT 1
), ins AS (
    INSERT INTO firehose_gaps (relay, after_seq, kind, message, live_until)
    SELECT @relay, @after_seq, @kind::text, @message,
           COALESCE(sqlc.narg(live_until)::timestamptz, (SELECT LEAST(c.event_time, c.updated_at) FROM firehose_cursor c WHERE c.relay = @relay))
    WHERE NOT EXISTS (SELECT 1 FROM prior)
    ON CONFLICT (relay, after_seq) WHERE repair_run_id IS NULL DO NOTHING
    RETURNING id
)
SELECT id, true AS inserted FROM ins
UNION ALL
SELECT id, false AS inserted FROM prior;

-- name: GapGet :one
SELECT * FROM firehose_gaps WHERE id = @id;

-- name: GapsAssignRun :execrows
-- A refresh run repairs every open gap that no earlier refresh took on: it reopens every
-- collection in the same transaction, after each of those gaps was detected.
UPDATE firehose_gaps SET repair_run_id = @run_id::bigint WHERE repair_run_id IS NULL AND repaired_at IS NULL;

-- name: GapsLock :exec
-- Serialises the transactions that may close gaps (closeGaps), until they end.
SELECT pg_advisory_xact_lock(@lock_key::bigint);

-- name: GapsMarkRepaired :execrows
-- Gaps whose refresh has happened, and whose sweep (if they have one) has finished, are
-- repaired once every collection is complete again and none is being reset: each was then paged from the beginning after the refresh, so after the
-- gap (a reset under way marks its row complete while it removes the collection's DIDs; it
-- pages the collection again from the beginning once they are gone). Called in the
-- transaction of every page that completes a collection, and when a run ends.
UPDATE firehose_gaps SET repaired_at = now()
WHERE repaired_at IS NULL AND repair_run_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM account_sweeps s WHERE s.gap_id = firehose_gaps.id AND s.finished_at IS NULL)
  AND NOT EXISTS (SELECT 1 FROM backfill_progress WHERE completed_at IS NULL OR resetting_since IS NOT NULL);

-- name: GapFutureCursorAfter :one
-- Whether the relay answered FutureCursor to this cursor: a move from it skips events
-- whichever way it goes (the stream after the move is the relay's new sequence).
SELECT EXISTS (SELECT 1 FROM firehose_gaps WHERE relay = @relay AND after_seq = @after_seq AND kind = 'future_cursor');

-- name: GapsDeleteAll :exec
-- reopen-all: the gaps were the replaced index's; every collection is paged again anyway.
DELETE FROM firehose_gaps;

-- name: GapsOpenCount :one
SELECT count(*) FROM firehose_gaps WHERE repaired_at IS NULL;

-- name: GapsRecent :many
-- Every open gap, and the latest @recent gaps whatever their state, newest first.
SELECT * FROM firehose_gaps
WHERE repaired_at IS NULL OR id IN (SELECT g.id FROM firehose_gaps g ORDER BY g.id DESC LIMIT @recent::int)
ORDER BY id DESC;

-- name: ProgressRefreshAll :execrows
-- A gap's repair: every collection is paged again from the beginning, keeping what the index
-- holds (adds are idempotent; tombstones and deleted accounts keep removals). Resets keep
-- their own columns, and a collection being reset is left to its reset, which pages it again
-- from the beginning once its DIDs are gone. The source generation moves, as a source move's
-- does: a page fetched before the refresh never commits, and its job pages again from the
-- refreshed row.
UPDATE backfill_progress
SET cursor = '',
    source_generation = source_generation + 1,
    imported_count = 0,
    skipped_count = 0,
    pages_fetched = 0,
    completed_at = NULL,
    last_error = '',
    first_page_at = NULL,
    last_page_at = NULL,
    updated_at = now()
WHERE resetting_since IS NULL;
