-- name: RunInsert :one
INSERT INTO backfill_runs (source, discovered, enqueued, lexicon_list_error, index_scan_error, lexicon_list_dropped)
VALUES (@source, @discovered, @enqueued, @lexicon_list_error, @index_scan_error, @lexicon_list_dropped)
RETURNING *;

-- name: RunGetLatest :one
SELECT * FROM backfill_runs ORDER BY id DESC LIMIT 1;

-- name: RunFinish :exec
UPDATE backfill_runs SET finished_at = now() WHERE id = @id AND finished_at IS NULL;

-- name: RunCancel :exec
UPDATE backfill_runs
SET cancelled_at = now(), finished_at = coalesce(finished_at, now())
WHERE id = @id AND finished_at IS NULL;
