// Package rocksindex is the collection index: for every record collection (an NSID), the set
// of account DIDs that have records in it, kept in RocksDB in zlay's layout so the two stay
// interchangeable.
//
// Column families:
//   - rbc ("repos by collection"): key <collection> 0x00 <did>, empty value. Prefix-scanned to
//     list one collection's repos in DID order, and skipped through to list collections.
//   - cbr ("collections by repo"): key <did> 0x00 <collection>, empty value. For per-DID
//     lookups and for deleting an account's entries.
//   - default: unused, but RocksDB requires it.
//
// Writes are idempotent (a key is present or not), so a page written twice leaves the index
// exactly as written once; that is what lets the backfill re-fetch an uncommitted page safely.
package rocksindex
