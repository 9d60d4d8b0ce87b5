// Command benchrelay serves a synthetic, network-shaped source relay on its own, for trying
// colindex locally without reaching bsky.network (the benchmark runs the same relay in its
// driver). It answers com.atproto.sync.listReposByCollection like bsky.network's
// collectiondir, lists its collections at /llms.txt, Lexicon Garden style, and serves a live
// firehose of real sync-1.1 commits by the same accounts (com.atproto.sync.subscribeRepos),
// with the relay's account list that sweeps ask (listRepos, getRepoStatus), and, on a second
// address, the writing accounts' PLC directory and PDS, which a follower's checks ask:
//
//	go run ./cmd/benchrelay -listen 127.0.0.1:2600 -pairs 100000 -firehose-rate 100
//	export COLINDEX_FIREHOSE_URL=ws://127.0.0.1:2600 COLINDEX_DEFAULT_SOURCE=http://127.0.0.1:2600 \
//	  COLINDEX_LEXICON_LIST_URL=http://127.0.0.1:2600/llms.txt \
//	  COLINDEX_PLC_URL=http://127.0.0.1:2601 COLINDEX_PDS_RPS=-1
//	make run
//	./bin/colindex start http://127.0.0.1:2600
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/colindex/colindex/internal/benchrelay"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:2600", "listen address")
	collections := flag.Int("collections", 200, "collections")
	pairs := flag.Int("pairs", 100_000, "(DID, collection) pairs in all")
	largest := flag.Float64("largest", 0.3, "share of the pairs in the largest collection")
	base := flag.Duration("latency", 20*time.Millisecond, "latency per request")
	perDID := flag.Duration("latency-per-did", 50*time.Microsecond, "added latency per DID returned")
	prefix := flag.String("prefix", "com.bench", "collection name prefix")
	rate := flag.Float64("firehose-rate", 100, "firehose events a second (0: no firehose)")
	accounts := flag.Int("firehose-accounts", 2000, "accounts of the data set that write to the firehose")
	network := flag.String("network-listen", "127.0.0.1:2601", "listen address of the writing accounts' PLC directory and PDS")
	flag.Parse()

	data := benchrelay.NewDataset(benchrelay.Spec{Collections: *collections, Pairs: *pairs, LargestShare: *largest, Prefix: *prefix})
	mux := http.NewServeMux()
	mux.Handle("/", benchrelay.Handler(data, benchrelay.Latency{Base: *base, PerDID: *perDID}))
	fmt.Printf("benchrelay: %d collections, %d pairs (largest %s with %d) on http://%s\n",
		len(data.Names), data.Pairs(), data.Names[0], data.Sizes[0], *listen)
	if *rate > 0 {
		if *accounts < 1 {
			log.Fatalf("-firehose-accounts %d: at least one account writes to a firehose", *accounts)
		}
		// Seeded from the clock: a restarted relay's writing accounts are others (an account
		// the follower saw deleted stays deleted there), and so are the new accounts it makes.
		fh, err := benchrelay.NewFirehose(data, *accounts, uint64(time.Now().UnixNano()))
		if err != nil {
			log.Fatal(err)
		}
		for _, method := range []string{"subscribeRepos", "listRepos", "getRepoStatus"} {
			mux.Handle("/xrpc/com.atproto.sync."+method, fh.Handler())
		}
		go func() { log.Fatal(fh.Run(context.Background(), *rate)) }()
		go func() {
			srv := &http.Server{Addr: *network, Handler: fh.Network(), ReadHeaderTimeout: 10 * time.Second}
			log.Fatal(srv.ListenAndServe())
		}()
		fmt.Printf("benchrelay: firehose at ws://%s, %g events a second by %d accounts; their PLC directory and PDS on http://%s\n",
			*listen, *rate, fh.Accounts(), *network)
	}
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
