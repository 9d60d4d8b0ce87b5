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
-- changes nothing (zero rows), so a page is never counted twice.
UPDATE backfill_progress
SET cursor = @next_cursor,
    imported_count = imported_count + @imported,
    skipped_count = skipped_count + @skipped,
    pages_fetched = pages_fetched + 1,
    completed_at = CASE WHEN @completed::boolean THEN now() ELSE NULL END,
    last_error = '',
    first_page_at = coalesce(first_page_at, now()),
    last_page_at = now(),
    updated_at = now()
WHERE collection = @collection
  AND cursor = @page_cursor
  AND completed_at IS NULL;

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
-- complete, so no start or retry pages it while its DIDs leave the index. A reset cut short
-- leaves it so, with the error saying what to do.
UPDATE backfill_progress
SET cursor = '',
    imported_count = 0,
    skipped_count = 0,
    pages_fetched = 0,
    completed_at = now(),
    last_error = 'reset in progress: its DIDs are being removed from the index (if this stays, reset it again)',
    first_page_at = NULL,
    last_page_at = NULL,
    updated_at = now()
WHERE collection = @collection
RETURNING *;

-- name: ProgressResetFinish :exec
-- The last step of a reset: the collection is paged again from the beginning.
UPDATE backfill_progress
SET completed_at = NULL, last_error = '', updated_at = now()
WHERE collection = @collection;
