-- name: ProgressInsertMany :execrows
-- New collections start from an empty cursor; existing rows are left exactly as they are,
-- so re-triggering a backfill never resets progress or changes a collection's source.
INSERT INTO backfill_progress (collection, source)
SELECT unnest(@collections::text[]), @source::text
ON CONFLICT (collection) DO NOTHING;

-- name: ProgressGet :one
SELECT * FROM backfill_progress WHERE collection = @collection;

-- name: ProgressList :many
SELECT * FROM backfill_progress ORDER BY collection;

-- name: ProgressListIncomplete :many
-- By name; jobs.orderLargestFirst decides the paging order.
SELECT * FROM backfill_progress
WHERE completed_at IS NULL
ORDER BY collection;

-- name: ProgressCountCompleted :one
SELECT count(*) FROM backfill_progress WHERE completed_at IS NOT NULL;

-- name: ProgressAdvance :execrows
-- Moves a collection past one committed page. The WHERE clause makes the move conditional
-- on the cursor the page was fetched from: a page applied twice, or by a stale worker,
-- changes nothing (zero rows), so a page is never counted twice. It is conditional on the
-- source generation too: a page fetched before a move (ProgressMoveSource) never commits.
UPDATE backfill_progress
SET cursor = @next_cursor,
    imported_count = imported_count + @imported,
    skipped_count = skipped_count + @skipped,
    pages_fetched = pages_fetched + 1,
    completed_at = CASE WHEN @completed::boolean THEN now() ELSE NULL END,
    last_error = '',
    first_page_at = coalesce(first_page_at, now()),
    last_page_at = now(),
    pages_written_at = now(),
    updated_at = now()
WHERE collection = @collection
  AND cursor = @page_cursor
  AND source_generation = @source_generation
  AND completed_at IS NULL;

-- name: ProgressStampWritten :exec
-- A page whose DIDs reached the index but whose transaction did not commit (a cancel asked
-- for during its commit, a lost connection, a source moved meanwhile): the sweep after the
-- backfill (jobs/sweep_after.go) must still learn that a page wrote.
UPDATE backfill_progress SET pages_written_at = now() WHERE collection = @collection;

-- name: ProgressSetError :exec
UPDATE backfill_progress
SET last_error = @last_error, updated_at = now()
WHERE collection = @collection;

-- name: ProgressListLag :many
-- Incomplete collections and how long since each last committed a page (or was discovered).
SELECT collection,
       extract(epoch FROM now() - coalesce(last_page_at, created_at))::float8 AS seconds_since_progress
FROM backfill_progress
WHERE completed_at IS NULL;

-- name: ProgressResetBegin :one
-- The first step of a reset: the row claims nothing (cursor, counts zero) and is marked
-- complete, so no start or retry pages it while its DIDs leave the index, and a page in
-- flight cannot commit (ProgressAdvance needs an incomplete row). The generation goes up, so
-- only the reset job enqueued with it may reopen the row. A reset that never finishes leaves
-- the row so, with resetting_since saying why.
UPDATE backfill_progress
SET cursor = '',
    imported_count = 0,
    skipped_count = 0,
    pages_fetched = 0,
    completed_at = now(),
    last_error = '',
    first_page_at = NULL,
    last_page_at = NULL,
    reset_generation = reset_generation + 1,
    resetting_since = now(),
    reset_removed = 0,
    updated_at = now()
WHERE collection = @collection
RETURNING *;

-- name: ProgressResetProgress :exec
-- How many DIDs the reset job has removed so far (for the status; not a claim).
UPDATE backfill_progress
SET reset_removed = @removed, updated_at = now()
WHERE collection = @collection AND reset_generation = @generation AND resetting_since IS NOT NULL;

-- name: ProgressResetFinish :execrows
-- The last step of a reset: the collection is paged again from the beginning. Conditional on
-- the reset's own first step: a reset that a later one overtook changes nothing.
UPDATE backfill_progress
SET completed_at = NULL, resetting_since = NULL, reset_removed = @removed,
    last_error = '', updated_at = now()
WHERE collection = @collection AND reset_generation = @generation AND resetting_since IS NOT NULL;

-- name: ProgressSummary :one
-- What the progress rows claim in all, for the index identity check.
SELECT count(*)::bigint AS collections,
       coalesce(sum(imported_count), 0)::bigint AS imported,
       count(*) FILTER (WHERE pages_fetched > 0)::bigint AS paged
FROM backfill_progress;

-- name: ProgressReopenAll :execrows
-- Every collection starts over on a fresh index: nothing claimed, paged again from the
-- beginning by the next start. Sources are kept.
UPDATE backfill_progress
SET cursor = '',
    imported_count = 0,
    skipped_count = 0,
    pages_fetched = 0,
    completed_at = NULL,
    last_error = '',
    first_page_at = NULL,
    last_page_at = NULL,
    pages_written_at = NULL,
    resetting_since = NULL,
    reset_removed = 0,
    updated_at = now();

-- name: ProgressCounts :one
-- Readiness (/_health): how many collections have a row, and how many are complete and not
-- being reset.
SELECT count(*) AS total,
       count(*) FILTER (WHERE completed_at IS NOT NULL AND resetting_since IS NULL) AS complete
FROM backfill_progress;
