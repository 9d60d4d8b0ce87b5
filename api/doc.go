// Package api is colindex's HTTP surface, one listener:
//
//   - /admin/backfill-collections (Huma operations, bearer auth): start a run, read progress;
//   - /xrpc/com.atproto.sync.listReposByCollection (public): the index, served back in the
//     shape colindex itself backfills from, so one colindex can backfill from another;
//   - /riverui/ (River UI, bearer or HTTP Basic with the admin password);
//   - /_health, and Huma's /openapi.json and /docs.
//
// Domain errors are mapped to HTTP here and nowhere else.
package api
