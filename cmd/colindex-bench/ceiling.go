package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
	"github.com/colindex/colindex/rocksindex"
)

// writeCeiling writes every pair of d straight into a fresh index in 1,000-DID batches, as
// the backfill does but with no HTTP and no Postgres, and returns DIDs per second: the most
// any backfill on this machine can reach with this index.
func writeCeiling(d *benchrelay.Dataset, workDir string) (float64, error) {
	return writeCeilingOf(d, workDir, 1000, 0)
}

// writeCeilingOf is writeCeiling in batches of batch DIDs, over the first upTo pairs of d
// (all of them when 0), in d's order: the largest collection first.
func writeCeilingOf(d *benchrelay.Dataset, workDir string, batch, upTo int) (float64, error) {
	dir := filepath.Join(workDir, "ceiling")
	defer os.RemoveAll(dir)
	ix, err := rocksindex.Open(dir)
	if err != nil {
		return 0, err
	}
	defer ix.Close()
	dids := make([]string, 0, batch)
	start := time.Now()
	written := 0
	for i, name := range d.Names {
		for j := 0; j < d.Sizes[i] && (upTo == 0 || written < upTo); j++ {
			written++
			dids = append(dids, d.DID(i, j))
			if len(dids) == batch || j == d.Sizes[i]-1 || written == upTo {
				if err := ix.Add(name, dids); err != nil {
					return 0, fmt.Errorf("ceiling: %w", err)
				}
				dids = dids[:0]
			}
		}
	}
	rate := float64(written) / time.Since(start).Seconds()
	log.Printf("raw index write ceiling: %.0f DIDs/s", rate)
	return rate, nil
}
