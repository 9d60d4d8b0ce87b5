package rocksindex

import (
	"bytes"
	"errors"
)

// sep separates the two parts of every key. Neither NSIDs nor DIDs can contain a zero byte,
// so the split is unambiguous and every collection's keys sort together.
const sep = 0x00

var errMalformedKey = errors.New("rocksindex: malformed key")

// rbcKey is the repos-by-collection key <collection> 0x00 <did>.
func rbcKey(collection, did string) []byte { return joinKey(collection, did) }

// cbrKey is the collections-by-repo key <did> 0x00 <collection>.
func cbrKey(did, collection string) []byte { return joinKey(did, collection) }

// parseRBCKey splits an rbc key into its collection and DID.
func parseRBCKey(key []byte) (collection, did string, err error) { return splitKey(key) }

// parseCBRKey splits a cbr key into its DID and collection.
func parseCBRKey(key []byte) (did, collection string, err error) { return splitKey(key) }

// collectionPrefix is the prefix every rbc key of a collection starts with.
func collectionPrefix(collection string) []byte {
	return append([]byte(collection), sep)
}

// collectionUpperBound is the first key past every rbc key of a collection:
// <collection> 0x01. Seeking there skips the whole collection in one step.
func collectionUpperBound(collection string) []byte {
	return append([]byte(collection), sep+1)
}

func joinKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, sep)
	return append(k, b...)
}

func splitKey(key []byte) (string, string, error) {
	i := bytes.IndexByte(key, sep)
	if i <= 0 || i == len(key)-1 {
		return "", "", errMalformedKey
	}
	return string(key[:i]), string(key[i+1:]), nil
}
