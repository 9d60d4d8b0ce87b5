// Package pgstore is colindex's Postgres state as typed Go: each collection's backfill
// progress, the runs, the stream's durable cursor, the index identity and source moves. sqlc
// generates every other file here from the SQL in sqlc/queries (make generate); none is
// edited by hand, and make test fails when they are stale. It is internal: the schema is
// colindex's own, not an API.
package pgstore
