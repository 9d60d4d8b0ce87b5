-- name: IndexIdentityGet :one
SELECT index_id FROM index_identity;

-- name: IndexIdentityClaim :exec
-- Records the index of a database that has none yet; a database already bound keeps its own.
INSERT INTO index_identity (index_id) VALUES (@index_id)
ON CONFLICT (singleton) DO NOTHING;

-- name: IndexIdentitySet :exec
-- Binds the database to an index, whatever it was bound to (colindex reopen-all).
INSERT INTO index_identity (index_id) VALUES (@index_id)
ON CONFLICT (singleton) DO UPDATE SET index_id = EXCLUDED.index_id, recorded_at = now();

-- name: IndexIdentityGetForUpdate :one
-- BindIndex's read: locks the row, so no page commit (which reads it FOR SHARE) interleaves
-- between the check of what the rows claim and the rebinding.
SELECT index_id FROM index_identity FOR UPDATE;

-- name: IndexIdentityGetForShare :one
-- A page commit's read: held to the commit, so a rebinding waits for the page and sees it.
SELECT index_id FROM index_identity FOR SHARE;
