package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/colindex/colindex/internal/benchrelay"
	"github.com/colindex/colindex/internal/pgstore"
	"github.com/colindex/colindex/migrations"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

// seedPause is zlay's fixed pause after every page.
const seedPause = 100 * time.Millisecond

// seedStrategy pages the data set the way zlay's backfiller does: one collection after
// another, 1,000 per page, a 100 ms pause after every page, each page's DIDs written to a
// RocksDB index and its cursor and count saved in Postgres before the next. It runs in this
// process on colindex's own parts, against the same source, so the comparison is of the
// strategy alone.
func (b *bench) seedStrategy(ctx context.Context, data *benchrelay.Dataset, latency benchrelay.Latency) (result, error) {
	log.Printf("seed strategy: sequential, pause %s after every page, limit 1000", seedPause)
	st, err := b.create(ctx)
	if err != nil {
		return result{}, err
	}
	defer b.drop(ctx, st)
	pool, err := pgxpool.New(ctx, st.dbURL)
	if err != nil {
		return result{}, err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		return result{}, err
	}
	index, err := rocksindex.Open(st.index)
	if err != nil {
		return result{}, err
	}
	defer index.Close()
	relay := benchrelay.New(data, latency)
	defer relay.Close()
	src, err := source.Parse(relay.URL)
	if err != nil {
		return result{}, err
	}
	client := source.NewClient(0)
	q := pgstore.New()

	start := time.Now()
	if _, err := q.ProgressInsertMany(ctx, pool, pgstore.ProgressInsertManyParams{Collections: data.Names, Source: src.Name}); err != nil {
		return result{}, err
	}
	var dids, pages int64
	for _, coll := range data.Names {
		cursor := ""
		for {
			page, err := client.ListRepos(ctx, src, coll, cursor, 1000)
			if err != nil {
				return result{}, fmt.Errorf("seed strategy: %s: %w", coll, err)
			}
			valid := make([]string, 0, len(page.DIDs))
			for _, d := range page.DIDs {
				if _, err := syntax.ParseDID(d); err == nil {
					valid = append(valid, d)
				}
			}
			if err := index.Add(coll, valid); err != nil {
				return result{}, err
			}
			next := page.Cursor
			if next == "" {
				next = cursor
			}
			if _, err := q.ProgressAdvance(ctx, pool, pgstore.ProgressAdvanceParams{
				Collection: coll, PageCursor: cursor, NextCursor: next,
				Imported: int64(len(valid)), Completed: page.Cursor == "",
			}); err != nil {
				return result{}, err
			}
			dids += int64(len(valid))
			pages++
			time.Sleep(seedPause)
			if page.Cursor == "" {
				break
			}
			cursor = page.Cursor
		}
	}
	stats := relay.Stats()
	res := result{name: "seed strategy (zlay's loop)", wall: time.Since(start), dids: dids, pages: pages,
		requests: stats.Requests, peakPerSecond: stats.PeakPerSecond}
	log.Printf("%s: %s, %.0f DIDs/s, %d requests", res.name, res.wall.Round(10*time.Millisecond), res.didsPerSec(), res.requests)
	return res, nil
}
