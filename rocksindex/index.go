package rocksindex

import (
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	"github.com/linxGnu/grocksdb"
)

const (
	cfDefault = "default"
	cfRBC     = "rbc"
	cfCBR     = "cbr"
)

// Index is an open collection index. It is safe for concurrent use.
type Index struct {
	db        *grocksdb.DB
	opts      *dbOptions
	handles   []*grocksdb.ColumnFamilyHandle
	rbc, cbr  *grocksdb.ColumnFamilyHandle
	syncWrite *grocksdb.WriteOptions
	read      *grocksdb.ReadOptions
	acct      accounts                     // account statuses (account.go)
	gone      *grocksdb.ColumnFamilyHandle // pairs the stream removed (removal.go)
	counts    counts                       // DIDs listed per collection (counts.go)
	present   present                      // pairs known whole, for the stream's repeats (present.go)
	resets    resets                       // writes during a DeleteCollection (resets.go)
	stamps    stamps                       // each account's last write, for PDS checks (since.go)
	listed    *grocksdb.ColumnFamilyHandle // the accounts a sweep's relay listed (listed.go)
	closed    atomic.Bool                  // set by Close, before it releases anything
}

// familyNames are the index's column families, in the order of Index.handles.
var familyNames = []string{cfDefault, cfRBC, cfCBR, cfAcct, cfGone, cfCount, cfListed}

// Open opens (creating if needed) the index in dir. It fails clearly when another process
// holds the directory (RocksDB's LOCK file) or the directory cannot be written.
func Open(dir string) (*Index, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open index: create %s: %w", dir, err)
	}
	opts := newDBOptions()
	cfOpts := []*grocksdb.Options{opts.large, opts.large, opts.large, opts.small, opts.small, opts.small, opts.small}
	db, handles, err := grocksdb.OpenDbColumnFamilies(opts.large, dir, familyNames, cfOpts)
	if err != nil {
		opts.destroy()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	syncWrite := grocksdb.NewDefaultWriteOptions()
	// Synced: the backfill moves its cursor only after this write returns, so the DIDs of
	// a committed page must survive a power cut, not just a process crash.
	syncWrite.SetSync(true)
	ix := &Index{
		db:        db,
		opts:      opts,
		handles:   handles,
		rbc:       handles[1],
		cbr:       handles[2],
		syncWrite: syncWrite,
		read:      grocksdb.NewDefaultReadOptions(),
	}
	ix.present.max = presentMax
	ix.acct.init(handles[3])
	ix.gone = handles[4]
	ix.counts.cf = handles[5]
	ix.listed = handles[6]
	if err := ix.loadCounts(); err != nil {
		ix.Close()
		return nil, fmt.Errorf("open index %s: %w", dir, err)
	}
	return ix, nil
}

// Close releases the index. Column family handles go before the DB: Debian's librocksdb
// asserts on the order and aborts the process otherwise.
func (ix *Index) Close() {
	ix.closed.Store(true)
	for _, h := range ix.handles {
		h.Destroy()
	}
	ix.db.Close()
	ix.syncWrite.Destroy()
	ix.acct.destroy()
	ix.read.Destroy()
	ix.opts.destroy()
}

// Memory bounds. RocksDB's defaults give each column family 64 MB memtables, two of them,
// and its own block cache: several hundred MB under a sustained backfill. These keep the
// index's share of a 10M-pair backfill well under 300 MB without costing write throughput
// (measured with make bench).
const (
	memtableBytes      = 16 << 20 // per column family, per memtable
	totalMemtableBytes = 64 << 20 // all column families together: past this, flush
	blockCacheBytes    = 32 << 20 // shared by all column families
)

// dbOptions are the index's RocksDB options: large for the pair families (rbc, cbr and the
// unused default), small for the rest (account statuses, tombstones, counts), which hold
// little and are mostly asked for keys they do not have.
//
// The small families have bloom filters (10 bits a key, 1% false positives): nearly every
// lookup in them is of an absent key (an active account, a pair never removed), which
// without a filter costs a search in every level's files. The pair families have none: their
// filters would hold RSS past the 400 MB target on the network's 61M pairs (428 MB six
// minutes into the rehearsal with filters on every level but the last, 150 MB more with the
// last), though they make stream adds into a 4M-pair index (BenchmarkAddPairsStream) about
// twice as fast.
type dbOptions struct {
	large, small           *grocksdb.Options
	largeTable, smallTable *grocksdb.BlockBasedTableOptions
	cache                  *grocksdb.Cache
}

func newDBOptions() *dbOptions {
	o := &dbOptions{cache: grocksdb.NewLRUCache(blockCacheBytes)}
	o.large, o.largeTable = o.family(true)
	o.small, o.smallTable = o.family(false)
	return o
}

func (o *dbOptions) family(large bool) (*grocksdb.Options, *grocksdb.BlockBasedTableOptions) {
	opts := grocksdb.NewDefaultOptions()
	opts.SetCreateIfMissing(true)
	opts.SetCreateIfMissingColumnFamilies(true)
	opts.SetWriteBufferSize(memtableBytes)
	opts.SetMaxWriteBufferNumber(3)
	opts.SetDbWriteBufferSize(totalMemtableBytes)
	opts.SetMaxBackgroundJobs(2)
	// Compactions run at a lower CPU priority than the process's other threads, so on a
	// machine the stream or a backfill keeps busy they take idle CPU instead of delaying
	// reads (measured with the rehearsal: README, Performance). Each Options destroys its
	// Env (a handle on RocksDB's one default environment), so each gets its own.
	env := grocksdb.NewDefaultEnv()
	env.LowerThreadPoolCPUPriority()
	opts.SetEnv(env)
	// Memtables get a whole-key bloom filter (a tenth of their size): absent keys skip the
	// skip-list search, which random stream adds spent most of their time in.
	opts.SetMemTablePrefixBloomSizeRatio(0.1)
	opts.SetMemtableWholeKeyFiltering(true)
	table := grocksdb.NewDefaultBlockBasedTableOptions()
	table.SetBlockCache(o.cache)
	if !large {
		table.SetFilterPolicy(grocksdb.NewBloomFilterFull(10))
	}
	opts.SetBlockBasedTableFactory(table)
	return opts, table
}

func (o *dbOptions) destroy() {
	o.large.Destroy()
	o.small.Destroy()
	o.largeTable.Destroy()
	o.smallTable.Destroy()
	o.cache.Destroy()
}

// Add records that every DID in dids has records in collection: one write batch with an rbc
// and a cbr key per DID and the collection's new count, synced before it returns. Callers
// validate the DIDs first.
func (ix *Index) Add(collection string, dids []string) error {
	// A deleted account is never put back, even by a page fetched before its removal
	// (the lock and the rule: account.go).
	ix.acct.mu.RLock()
	defer ix.acct.mu.RUnlock()
	dids = slices.Compact(slices.Sorted(slices.Values(dids))) // a page listing a DID twice counts it once
	statuses, err := ix.statuses(dids)
	if err != nil {
		return err
	}
	live := dids[:0:0]
	var hidden map[string]bool // inactive accounts: indexed, not counted (nor listed)
	for i, did := range dids {
		switch statuses[i] {
		case "":
			live = append(live, did)
		case StatusDeleted:
		default:
			live = append(live, did)
			if hidden == nil {
				hidden = map[string]bool{}
			}
			hidden[did] = true
		}
	}
	// Nor a pair the stream proved gone (the rule: removal.go).
	if live, err = ix.withoutGone(collection, live); err != nil || len(live) == 0 {
		return err
	}
	unlock := ix.counts.lock(collection)
	exists, err := ix.rbcExists(collection, live)
	if err != nil {
		unlock()
		return err
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	var added int64
	written := make([]Pair, len(live))
	for i, did := range live {
		// Both sides every time: a half-written pair (a reset cut short) is made whole.
		wb.PutCF(ix.rbc, rbcKey(collection, did), nil)
		wb.PutCF(ix.cbr, cbrKey(did, collection), nil)
		if !exists[i] && !hidden[did] {
			added++
		}
		written[i] = Pair{Collection: collection, DID: did}
	}
	ix.resets.note(written)
	commit := ix.counts.stage(wb, map[string]int64{collection: added})
	// Written unsynced under the stripe lock (so the count's order is the WAL's), synced
	// after it: concurrent pages do not queue their fsyncs behind one lock.
	err = ix.db.Write(ix.acct.noSync, wb)
	if err == nil {
		commit()
	}
	unlock()
	if err != nil {
		return fmt.Errorf("index %d DIDs of %s: %w", len(live), collection, err)
	}
	return ix.SyncWAL()
}

// CollectionsOf returns the collections indexed for one DID, from cbr.
func (ix *Index) CollectionsOf(did string) ([]string, error) {
	var colls []string
	err := ix.scan(ix.cbr, collectionPrefix(did), collectionUpperBound(did), func(key []byte) bool {
		if _, coll, err := parseCBRKey(key); err == nil {
			colls = append(colls, coll)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("collections of %s: %w", did, err)
	}
	return colls, nil
}

// Collections lists the distinct collections in rbc without reading every key: it reads one
// key, then seeks past <collection> 0x01 to the next collection. The cost is one seek per
// collection, however many DIDs each holds.
func (ix *Index) Collections() ([]string, error) {
	it := ix.db.NewIteratorCF(ix.read, ix.rbc)
	defer it.Close()
	var colls []string
	for it.SeekToFirst(); it.Valid(); {
		k := it.Key()
		coll, _, err := parseRBCKey(k.Data())
		k.Free()
		if err != nil {
			return nil, fmt.Errorf("list collections: %w", err)
		}
		colls = append(colls, coll)
		it.Seek(collectionUpperBound(coll))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list collections: %w", err)
	}
	return colls, nil
}

// Ping answers whether the index can be read.
func (ix *Index) Ping() error {
	v, err := ix.db.GetCF(ix.read, ix.rbc, []byte{sep})
	if err != nil {
		return fmt.Errorf("index ping: %w", err)
	}
	v.Free()
	return nil
}

// ApproximateSizes estimates, for each collection, the bytes its rbc keys take on disk
// (RocksDB's own estimate from SST metadata: no keys are read, and what is still in the
// memtable is not counted). Good enough to tell a 30M-DID collection from a small one.
func (ix *Index) ApproximateSizes(collections []string) ([]uint64, error) {
	ranges := make([]grocksdb.Range, len(collections))
	for i, c := range collections {
		ranges[i] = grocksdb.Range{Start: collectionPrefix(c), Limit: collectionUpperBound(c)}
	}
	sizes, err := ix.db.GetApproximateSizesCF(ix.rbc, ranges)
	if err != nil {
		return nil, fmt.Errorf("approximate sizes: %w", err)
	}
	return sizes, nil
}
