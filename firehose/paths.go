package firehose

import (
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Every op of every commit names its record by path, collection/rkey, and indigo's parser
// checks both parts with regular expressions: 15% of the applier's time on the stream
// benchmark. The collections of a stream are few and repeat, and most record keys are TIDs,
// so the common path is checked with a set of the collections indigo has already accepted and
// a test that admits only record keys indigo's syntax certainly accepts (letters and digits,
// 1 to 512 of them). Anything else, and every collection seen for the first time, goes
// through indigo's syntax.ParseRepoPath, whose errors are the ones reported.

// nsidsMax bounds the set of accepted collections (about 1,300 on bsky.network): past it,
// the set starts again empty.
const nsidsMax = 20_000

// collections is the set of collection NSIDs syntax.ParseRepoPath accepted. A hit also
// returns the set's own copy of the string, so the index's pairs share one per collection.
type collections struct {
	mu  sync.Mutex
	set map[string]string
}

// collectionOf returns the collection of a record path, checked as syntax.ParseRepoPath does.
func (c *collections) collectionOf(path string) (string, error) {
	if coll, rkey, ok := strings.Cut(path, "/"); ok && plainRecordKey(rkey) {
		c.mu.Lock()
		known, hit := c.set[coll]
		c.mu.Unlock()
		if hit {
			return known, nil
		}
	}
	nsid, _, err := syntax.ParseRepoPath(path)
	if err != nil {
		return "", err
	}
	coll := nsid.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil || len(c.set) >= nsidsMax {
		c.set = make(map[string]string)
	}
	c.set[coll] = coll
	return coll, nil
}

// plainRecordKey reports whether rkey is 1 to 512 ASCII letters and digits: a record key by
// indigo's syntax (which also allows "_~.:-", and refuses "." and ".."), and no slash.
func plainRecordKey(rkey string) bool {
	if len(rkey) == 0 || len(rkey) > 512 {
		return false
	}
	for i := 0; i < len(rkey); i++ {
		b := rkey[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return false
		}
	}
	return true
}
