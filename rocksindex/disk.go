package rocksindex

import (
	"strconv"

	"github.com/linxGnu/grocksdb"
)

// What the index costs on disk, by column family, for the rehearsal's report and operators'
// sizing (docs/SCALING.md).

// FamilySize is one column family's SST bytes and live keys (RocksDB's estimates).
type FamilySize struct {
	Family string
	Bytes  uint64
	Keys   uint64
}

// DiskUsage returns every column family's SST bytes and estimated keys; what is still in a
// memtable is not counted (Compact flushes it).
func (ix *Index) DiskUsage() []FamilySize {
	out := make([]FamilySize, len(ix.handles))
	for i, h := range ix.handles {
		out[i] = FamilySize{Family: familyNames[i],
			Bytes: ix.propertyUint(h, "rocksdb.total-sst-files-size"),
			Keys:  ix.propertyUint(h, "rocksdb.estimate-num-keys")}
	}
	return out
}

func (ix *Index) propertyUint(h *grocksdb.ColumnFamilyHandle, name string) uint64 {
	n, _ := strconv.ParseUint(ix.db.GetPropertyCF(name, h), 10, 64)
	return n
}

// Compact flushes every column family's memtable and compacts its whole key range: what an
// index of that content costs at rest. It blocks until done (minutes on the network's index).
func (ix *Index) Compact() error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, h := range ix.handles {
		if err := ix.db.FlushCF(h, fo); err != nil {
			return err
		}
		ix.db.CompactRangeCF(h, grocksdb.Range{})
	}
	return nil
}
