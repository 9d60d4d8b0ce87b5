-- name: ProgressListForMove :many
-- The rows a move may change, locked until it commits: every row (all) or the named ones.
-- A page committing now finishes first; one that has not yet locked its row sees the move.
SELECT * FROM backfill_progress
WHERE @every::boolean OR collection = ANY(@collections::text[])
ORDER BY collection
FOR UPDATE;

-- name: ProgressMoveSource :one
-- Binds one collection to another source. The generation goes up, so a page fetched from
-- the old source cannot commit (ProgressAdvance). Keeping the cursor leaves the counts and
-- completion as they are; restarting pages the collection again from the beginning on the
-- new source, claiming nothing yet (what the old source delivered stays in the index: adding
-- a pair is idempotent, so the new source's pages count it again honestly). A row being
-- reset claims nothing already and is reopened by its reset job: only its source changes.
UPDATE backfill_progress
SET source = @source,
    source_generation = source_generation + 1,
    last_error = '',
    cursor = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN '' ELSE cursor END,
    imported_count = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN 0 ELSE imported_count END,
    skipped_count = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN 0 ELSE skipped_count END,
    pages_fetched = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN 0 ELSE pages_fetched END,
    first_page_at = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN NULL ELSE first_page_at END,
    last_page_at = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN NULL ELSE last_page_at END,
    completed_at = CASE WHEN @restart::boolean AND resetting_since IS NULL THEN NULL ELSE completed_at END,
    updated_at = now()
WHERE collection = @collection
RETURNING *;
