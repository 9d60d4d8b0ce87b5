-- name: FirehoseCursorGet :one
SELECT seq FROM firehose_cursor WHERE relay = @relay;

-- name: FirehoseCursorSet :exec
-- Only ever called with a seq whose effects are already synced in the index.
INSERT INTO firehose_cursor (relay, seq) VALUES (@relay, @seq)
ON CONFLICT (relay) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now();

-- name: FirehoseLockTry :one
-- A session lock: held for as long as the connection that took it lives, so a follower that
-- dies (or loses its connection) frees it for the next without any lease to expire.
SELECT pg_try_advisory_lock(@lock_key::bigint) AS locked;
