package source

// The page sizes of com.atproto.sync.listReposByCollection, as bsky.network's collectiondir
// applies them (indigo cmd/collectiondir: getLimit(c, 1, 500, 10_000)). One place for what
// colindex serves (api) and what its stand-in sources serve (internal/testrelay,
// internal/benchrelay), so a test source cannot drift from the server it stands in for.
const (
	// DefaultLimit is the page size when a request names none.
	DefaultLimit = 500
	// MaxLimit is the largest page served; larger limits are clamped to it, not refused.
	MaxLimit = 10000
)

// ClampLimit clamps a requested limit to 1..MaxLimit, as the network's servers do.
func ClampLimit(n int) int { return min(max(n, 1), MaxLimit) }
