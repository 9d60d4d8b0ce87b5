-- name: IndexIdentityGet :one
SELECT index_id FROM index_identity;

-- name: IndexIdentityClaim :exec
-- Records the index of a database that has none yet; a database already bound keeps its own.
INSERT INTO index_identity (index_id) VALUES (@index_id)
ON CONFLICT (singleton) DO NOTHING;

-- name: IndexIdentityReplace :execrows
-- Binds the database to another index, only if it is still bound to the one the caller saw.
UPDATE index_identity SET index_id = @new_index_id, recorded_at = now()
WHERE index_id = @old_index_id;

-- name: IndexIdentitySet :exec
-- Binds the database to an index, whatever it was bound to (colindex reopen-all).
INSERT INTO index_identity (index_id) VALUES (@index_id)
ON CONFLICT (singleton) DO UPDATE SET index_id = EXCLUDED.index_id, recorded_at = now();
