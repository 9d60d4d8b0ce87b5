package jobs

import (
	"errors"
	"time"

	"github.com/colindex/colindex/source"
)

// pageCommitBudget covers a page's work after its fetch: validating the DIDs, the synced
// index write and the commit transaction (tens of milliseconds normally; seconds when
// Postgres or the disk is slow).
const pageCommitBudget = 3 * time.Second

// BeforeFetchBudget is the longest Config.BeforeFetch may hold a page (the live stream going
// first while it is behind): part of a page job's timeout. Measured with the stream
// benchmark on 2 cores: at 1 s, eight workers still passed eight 10,000-DID pages a second
// and took half the stream's rate; at 5 s the backfill's share while the stream catches up is
// under a page a second per worker, and it resumes full speed once the stream is current.
const BeforeFetchBudget = 5 * time.Second

// ErrYield, from Config.BeforeFetch, hands the page back to River for yieldSnooze without
// spending an attempt: the live stream is still behind after the page waited its budget, and
// the page gives way again instead of taking the cores from it.
var ErrYield = errors.New("the live stream is behind: the page gives way")

const yieldSnooze = time.Second

// PageJobTimeout is the longest one page job may run, sized from its parts: the pause
// between two pages of a collection, the wait for the live stream (BeforeFetchBudget), the
// longest a fetch can wait and take (source.MaxFetchTime), and the commit. A timeout shorter than its own waits fails slow
// pages that were still working, and River's rescuer would run them a second time.
func PageJobTimeout(pagePause time.Duration) time.Duration {
	return pagePause + BeforeFetchBudget + source.MaxFetchTime + pageCommitBudget
}

// rescueAfter is when River's rescuer may retry a page job left running by a process that
// died: just past the timeout, since only a job older than its timeout can be a dead one,
// and every second more delays the resume after a crash.
func rescueAfter(pageTimeout time.Duration) time.Duration { return pageTimeout + time.Second }
