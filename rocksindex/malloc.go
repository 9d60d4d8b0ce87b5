package rocksindex

// #cgo LDFLAGS: -ljemalloc
// #include <stdint.h>
// #include <jemalloc/jemalloc.h>
//
// // colindex_jemalloc_allocated refreshes jemalloc's statistics and returns the bytes the
// // process has allocated through it, or -1 when they cannot be read.
// static int64_t colindex_jemalloc_allocated(void) {
//   uint64_t epoch = 1;
//   size_t sz = sizeof(epoch);
//   if (mallctl("epoch", &epoch, &sz, &epoch, sz) != 0) return -1;
//   size_t allocated = 0;
//   sz = sizeof(allocated);
//   if (mallctl("stats.allocated", &allocated, &sz, NULL, 0) != 0) return -1;
//   return (int64_t)allocated;
// }
import "C"

// RocksDB takes its memory (memtables, block cache, table readers, compaction buffers) from
// the C allocator, from its own threads and from every Go thread that calls into it. With
// glibc's malloc the process held far more than RocksDB had live: memory freed into one of its
// heaps goes back to the system only from the heap's top, and a 61M-pair backfill's peak RSS
// passed 400 MB in three runs of four (371–427 MB), with two arenas and with a fixed mmap
// threshold alike. colindex links jemalloc (Debian's libjemalloc, the allocator RocksDB is
// built and tuned with upstream), which returns freed pages on its own; being linked into the
// executable, its malloc is the one RocksDB (statically linked by the Makefile, or the shared
// library of a plain go build) and libstdc++ call too. BENCHMARKS.md's
// rehearsal has the figures.

// jemallocAllocated is the bytes allocated through jemalloc, or -1 if its statistics cannot be
// read. Tests use it to check that RocksDB's allocations really go through jemalloc.
func jemallocAllocated() int64 { return int64(C.colindex_jemalloc_allocated()) }
