-- name: FirehoseCursorGet :one
SELECT seq, generation FROM firehose_cursor WHERE relay = @relay;

-- name: FirehoseCursorSet :exec
-- Only ever called with a seq whose effects are already synced in the index.
INSERT INTO firehose_cursor (relay, seq) VALUES (@relay, @seq)
ON CONFLICT (relay) DO UPDATE SET seq = EXCLUDED.seq, event_time = NULL, updated_at = now();

-- name: FirehoseLockTry :one
-- A session lock: held for as long as the connection that took it lives, so a follower that
-- dies (or loses its connection) frees it for the next without any lease to expire.
SELECT pg_try_advisory_lock(@lock_key::bigint) AS locked;

-- name: FirehoseUnlock :exec
-- Released before the lock connection closes: the server ends a closed session a little after,
-- and until then the lock would turn away the next follower (this one, after a cursor move).
SELECT pg_advisory_unlock(@lock_key::bigint);

-- name: FirehoseCursorSave :execrows
-- The flusher's save: only while the database is bound to the index the events were applied
-- to (or to none), so a follower whose index is no longer the database's cannot move the
-- cursor past events the database's index never received; and only while the generation the
-- follower started from is current, so it cannot write over an operator's move.
-- event_time is when the stream stood at seq (the median time of the events passed since the
-- last save), when known.
INSERT INTO firehose_cursor (relay, seq, generation, event_time)
SELECT @relay::text, @seq::bigint, @generation::bigint, sqlc.narg(event_time)::timestamptz
WHERE NOT EXISTS (SELECT 1 FROM index_identity)
   OR EXISTS (SELECT 1 FROM index_identity WHERE index_id = @index_id::text)
ON CONFLICT (relay) DO UPDATE SET seq = EXCLUDED.seq, event_time = EXCLUDED.event_time, updated_at = now()
WHERE firehose_cursor.generation = EXCLUDED.generation;

-- name: FirehoseCursorGeneration :one
-- The follower's check that nobody moved its cursor.
SELECT generation FROM firehose_cursor WHERE relay = @relay;

-- name: FirehoseCursorMove :one
-- An operator's move: seq becomes the cursor (-1: the live tail) under a new generation, which
-- the follower notices at its next save or check. previous is the cursor it replaced, as read
-- just before (replaced is false when there was none), previous_live_at when the stream stood
-- there: the time of its events if known (never later than its save), else when it was
-- saved (now when there was none).
WITH prev AS (SELECT seq, LEAST(event_time, updated_at) AS live_at FROM firehose_cursor WHERE relay = @relay)
INSERT INTO firehose_cursor (relay, seq, generation)
VALUES (@relay, @seq, nextval('firehose_cursor_generation'))
ON CONFLICT (relay) DO UPDATE SET seq = EXCLUDED.seq, generation = EXCLUDED.generation, event_time = NULL, updated_at = now()
RETURNING generation, EXISTS (SELECT 1 FROM prev) AS replaced, COALESCE((SELECT seq FROM prev), -1)::bigint AS previous,
    COALESCE((SELECT live_at FROM prev), now())::timestamptz AS previous_live_at;

-- name: FirehoseCursorCount :one
SELECT count(*) FROM firehose_cursor;

-- name: FirehoseCursorDeleteAll :exec
-- reopen-all: the stream's effects before a saved cursor are not in a new index, so the
-- follower starts again at the live tail (the backfill covers history).
DELETE FROM firehose_cursor;

-- name: FirehoseCursorSeed :execrows
-- A replica's first start: its stream begins where its peer's index stood when the replica
-- began copying it. A cursor already saved (a restart) wins, except the live tail (-1): it
-- says no event has been applied since it was set, so the peer's cursor replaces it, under a
-- new generation, as a move would (a follower that started from -1 starts again from it).
INSERT INTO firehose_cursor (relay, seq) VALUES (@relay, @seq)
ON CONFLICT (relay) DO UPDATE SET seq = EXCLUDED.seq, generation = nextval('firehose_cursor_generation'), event_time = NULL, updated_at = now()
WHERE firehose_cursor.seq = -1;
