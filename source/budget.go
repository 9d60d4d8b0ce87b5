package source

// MaxFetchTime is the longest one Fetch can take before it returns: a source's hold honoured
// inline, the wait in the rate cap's queue, a second inline hold (a 429 that arrived while
// the request queued), then the request itself. Longer holds and queues are handed back as a
// RateLimitedError instead. A page job's timeout is sized from it.
const MaxFetchTime = maxInlineWait + maxQueueWait + maxInlineWait + RequestTimeout
