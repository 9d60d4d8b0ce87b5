// Package source talks to a source relay: a server that already answers
// com.atproto.sync.listReposByCollection (bsky.network by default). It parses the operator's
// `source` value, fetches pages through one shared keep-alive HTTP client with timeouts, a
// response size cap and a per-source request rate cap, and turns XRPC error bodies into errors.
//
// It does not interpret the page: DID validation and paging state belong to the backfill jobs.
package source
