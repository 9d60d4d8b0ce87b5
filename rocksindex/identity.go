package rocksindex

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// identityKey holds the index's identity in the default column family. Postgres records the
// same value (the index_identity table), so a database is never paired with an index it does
// not describe: another directory, a wiped one, or a copy restored from elsewhere.
var identityKey = []byte("colindex.index_id")

// ID returns the index's identity, or "" for an index that has none yet (new, or wiped).
func (ix *Index) ID() (string, error) {
	v, err := ix.db.GetCF(ix.read, ix.handles[0], identityKey)
	if err != nil {
		return "", fmt.Errorf("read index identity: %w", err)
	}
	defer v.Free()
	return string(v.Data()), nil
}

// EnsureID returns the index's identity, giving it a new random one (synced) when it has none.
func (ix *Index) EnsureID() (id string, created bool, err error) {
	if id, err = ix.ID(); err != nil || id != "" {
		return id, false, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", false, fmt.Errorf("new index identity: %w", err)
	}
	id = hex.EncodeToString(b)
	if err := ix.db.PutCF(ix.syncWrite, ix.handles[0], identityKey, []byte(id)); err != nil {
		return "", false, fmt.Errorf("write index identity: %w", err)
	}
	return id, true, nil
}
