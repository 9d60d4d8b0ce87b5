package firehose

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/events"

	"github.com/colindex/colindex/internal/fakerelay"
	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/rocksindex"
)

const (
	benchAccounts    = 5_000
	benchCommits     = 50_000
	benchCollections = 20
)

// benchStream builds benchCommits real #commit events (signed, with MST blocks), each one
// create in one of benchCollections collections by one of benchAccounts accounts: about 80%
// of them add a pair the index does not have yet, so most commits write. With deleteEvery
// > 0, one commit in deleteEvery instead deletes one of its account's records (often the
// last of its collection, so the proof removes the pair).
func benchStream(b *testing.B, deleteEvery int) []*events.XRPCStreamEvent {
	rng := rand.New(rand.NewPCG(1, 2))
	accts := make([]*fakerelay.Account, benchAccounts)
	owned := make([][]fakerelay.Op, benchAccounts)
	for i := range accts {
		accts[i] = newAccount(b, i)
	}
	out := make([]*events.XRPCStreamEvent, benchCommits)
	for i := range out {
		n := rng.IntN(len(accts))
		op := fakerelay.Create(fmt.Sprintf("com.example.bench.c%02d", rng.IntN(benchCollections)), fmt.Sprintf("3k%011d", i))
		if deleteEvery > 0 && i%deleteEvery == deleteEvery-1 && len(owned[n]) > 0 {
			j := rng.IntN(len(owned[n]))
			op = fakerelay.Delete(owned[n][j].Collection, owned[n][j].Rkey)
			owned[n] = append(owned[n][:j], owned[n][j+1:]...)
		} else {
			owned[n] = append(owned[n], op)
		}
		evt, err := accts[n].Commit(op)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = &events.XRPCStreamEvent{RepoCommit: evt}
	}
	return out
}

// BenchmarkIngest measures events/s from a loopback relay to a durable cursor: each iteration
// replays the whole stream from cursor 0 into a fresh index and database, and the clock stops
// when the cursor saved in Postgres (after a WAL sync) reaches the last event.
//
//	go test -run '^$' -bench Ingest -benchtime 3x ./firehose/
func BenchmarkIngest(b *testing.B) {
	b.Run("creates", func(b *testing.B) { benchIngest(b, benchStream(b, 0)) })
	b.Run("1 in 10 a delete", func(b *testing.B) { benchIngest(b, benchStream(b, 10)) })
}

func benchIngest(b *testing.B, stream []*events.XRPCStreamEvent) {
	relay := fakerelay.New(b)
	var last int64
	for _, xev := range stream {
		seq, err := relay.Append(xev)
		if err != nil {
			b.Fatal(err)
		}
		last = seq
	}
	var total, cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ix, err := rocksindex.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		pool := pgtest.NewPool(b)
		if err := queries.FirehoseCursorSet(context.Background(), pool, cursorParams(relay.URL(), 0)); err != nil {
			b.Fatal(err)
		}
		// A short flush interval: the clock stops at the first save past the last event.
		f, err := New(Config{URL: relay.URL(), Pool: pool, Index: ix, FlushInterval: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		b.StartTimer()
		began, cpuBegan := time.Now(), processCPU(b)
		go func() {
			defer close(done)
			_ = f.Run(ctx)
		}()
		deadline := time.After(5 * time.Minute)
		for f.Status().Cursor < last {
			select {
			case <-deadline:
				b.Fatalf("cursor stuck at %d of %d", f.Status().Cursor, last)
			case <-time.After(2 * time.Millisecond):
			}
		}
		total += time.Since(began)
		cpu += processCPU(b) - cpuBegan
		b.StopTimer()
		cancel()
		<-done
		ix.Close()
	}
	b.ReportMetric(float64(benchCommits*b.N)/total.Seconds(), "events/s")
	// CPU per event is steadier than the rate on a shared machine; it includes the loopback
	// relay, which runs in this process.
	b.ReportMetric(float64(cpu.Microseconds())/float64(benchCommits*b.N), "µs-CPU/event")
}

// processCPU is this process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
