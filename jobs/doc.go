// Package jobs is the backfill itself, as River jobs.
//
// A run starts with Backfill.Start (called by the admin API): it discovers collections,
// records a progress row for each (never resetting an existing one), and, in one
// transaction, inserts the run's watcher job and one page job per incomplete collection.
//
//   - backfill_page (PageWorker): fetches one page of one collection from the collection's
//     source, writes its valid DIDs to the index (one synced batch), then in ONE Postgres
//     transaction advances the cursor and count (conditional on the cursor it fetched from),
//     completes itself and inserts the next page job. A page whose transaction does not
//     commit is fetched again from the same cursor and counted once. Unique per collection:
//     one chain per collection.
//   - backfill_run (RunWorker): a watcher that lives while any page job is live, then marks
//     the run finished. Unique by kind: while it lives, a second run is refused (409).
//
// Around them: collection resets (reset.go), the stream's checks with an account's PDS
// (verify*.go), the repair of the stream's gaps (gaps.go), and account sweeps of the relay
// (sweep*.go), among them the one that follows the backfill's pages (sweep_after.go).
package jobs
