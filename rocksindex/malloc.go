package rocksindex

// #include <malloc.h>
//
// static int colindex_limit_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
import "C"

// RocksDB allocates its blocks, memtables and compaction buffers with the C allocator, from
// its own background threads and from every Go thread that calls into it. glibc gives each
// such thread an arena of its own (up to eight per core), and memory freed into one arena is
// not reused by another: under a long backfill the process holds several times what RocksDB
// has live. Two arenas keep that waste bounded on the small machines colindex runs on
// (BENCHMARKS.md's rehearsal measures peak RSS and write rate with it). jemalloc would do
// better, but is one more system library to install.
const mallocArenas = 2

func init() {
	C.colindex_limit_arenas(mallocArenas)
}
