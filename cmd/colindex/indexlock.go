package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/colindex/colindex/rocksindex"
)

// ownerFile names the process that holds an index directory, for the message another start
// gets. RocksDB's own LOCK file says only that the directory is locked.
const ownerFile = "colindex.owner"

// openIndex opens the index, and when another process holds it, says which.
func openIndex(dir, listen string) (*rocksindex.Index, error) {
	index, err := rocksindex.Open(dir)
	if err != nil {
		if strings.Contains(err.Error(), "lock") {
			owner, _ := os.ReadFile(filepath.Join(dir, ownerFile))
			if who := strings.TrimSpace(string(owner)); who != "" {
				return nil, fmt.Errorf("another colindex (%s) holds the index in %s: stop it, or give this one another --index-dir (COLINDEX_INDEX_DIR) and database (%w)", who, absPath(dir), err)
			}
			return nil, fmt.Errorf("another process holds the index in %s: stop it, or give this one another --index-dir (COLINDEX_INDEX_DIR) (%w)", absPath(dir), err)
		}
		return nil, err
	}
	host, _ := os.Hostname()
	_ = os.WriteFile(filepath.Join(dir, ownerFile), fmt.Appendf(nil, "pid %d on %s, listening on %s\n", os.Getpid(), host, listen), 0o644)
	return index, nil
}
