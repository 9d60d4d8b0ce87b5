package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"
	"riverqueue.com/riverui"

	"github.com/colindex/colindex/api"
	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/migrations"
	"github.com/colindex/colindex/source"
)

// errUncleanStop is returned when work was still running at shutdown; the index was left
// open rather than closed under it (every write was synced, so nothing is lost).
var errUncleanStop = errors.New("stopped without closing the index: work was still running")

// serve runs the service until SIGINT or SIGTERM: listen, migrate, open and bind the index,
// start the job system and the firehose follower, serve HTTP; then stop intake, stop the
// stream, let running jobs finish, and close the index last.
func serve(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogFormat)
	for _, w := range cfg.Warnings { // a short password, a password on the command line
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Listen before anything else: a start that cannot serve (the port is taken) must fail
	// before River takes page jobs it would leave running until the rescuer finds them.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()

	if err := ensureDatabase(ctx, cfg.DatabaseURL, log); err != nil {
		return err
	}
	poolCfg, err := poolConfig(cfg.DatabaseURL, cfg.Concurrency)
	if err != nil {
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		return err
	}

	index, err := openIndex(cfg.IndexDir, ln.Addr().String())
	if err != nil {
		return err
	}
	closeIndex := true
	defer func() {
		if closeIndex {
			index.Close()
		}
	}()
	if err := jobs.BindIndex(ctx, pool, index, absPath(cfg.IndexDir)); err != nil {
		return err
	}

	// One set of metrics for the process: every part records into it, /metrics serves it.
	m := metrics.New()
	// The stream's deletes its proof cannot settle, and its #sync events, go to checks with the
	// account's PDS (River jobs of the job system built below).
	var backfill *jobs.Backfill
	var follower *firehose.Firehose
	if cfg.FirehoseURL != "" {
		follower, err = firehose.New(firehose.Config{URL: cfg.FirehoseURL, Pool: pool, Index: index, Logger: log, Metrics: m,
			OnRecordDelete: func(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit, coll string) error {
				return backfill.EnqueueVerifyCollection(ctx, evt.Repo, coll)
			},
			OnSync: func(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Sync) error {
				return backfill.EnqueueVerifyRepo(ctx, evt.Did)
			},
			OnUnknownActivation: replicaActivation(cfg.ReplicaOf != "", func(ctx context.Context, did string) error {
				return backfill.EnqueueVerifyRepo(ctx, did)
			}),
			OnGap: func(ctx context.Context, afterSeq int64, kind, message string) error {
				_, err := backfill.RecordGap(ctx, follower.Relay(), afterSeq, kind, message)
				return err
			},
		})
		if err != nil {
			return err
		}
	}
	var beforeFetch func(context.Context) error
	if follower != nil {
		// The live stream goes first while it is behind: a page waits at most the budget, then
		// gives way again (a snooze) while the stream is still behind (for up to ten minutes
		// of it: firehose.ShouldYield).
		beforeFetch = func(ctx context.Context) error {
			if err := follower.WaitCaughtUp(ctx, jobs.BeforeFetchBudget); err != nil {
				return err
			}
			if follower.ShouldYield() {
				return jobs.ErrYield
			}
			return nil
		}
	}
	followed := ""
	if follower != nil {
		followed = follower.Relay()
	}
	sources := source.NewClient(cfg.SourceRPS, source.WithMetrics(m))
	gapSource, err := gapRepairSource(cfg)
	if err != nil {
		return err
	}
	backfill, err = jobs.New(jobs.Config{
		Pool:            pool,
		Index:           index,
		Source:          sources,
		Logger:          log,
		Metrics:         m,
		PageLimit:       cfg.PageLimit,
		PagePause:       cfg.PagePause,
		Concurrency:     cfg.Concurrency,
		PageMaxAttempts: cfg.MaxAttempts,
		LexiconListURL:  cfg.LexiconListURL,
		BeforeFetch:     beforeFetch,
		PLCURL:          cfg.PLCURL,
		PDSRate:         cfg.PDSRate,

		VerifyAllowPrivate: cfg.AllowPrivate,
		GapRepairSource:    gapSource,
		GapRepairReady:     peerWithoutGaps(cfg.ReplicaOf, sources),
		SweepAfterBackfill: sweepAfterBackfill(cfg, followed),
	})
	if err != nil {
		return err
	}
	// Workers run on their own context: on SIGTERM they are stopped gracefully below, after
	// the HTTP server, so running pages finish (or roll back) before the index closes.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	if err := backfill.StartWorkers(workCtx); err != nil {
		return err
	}
	followCtx, stopFollowing := context.WithCancel(workCtx)
	defer stopFollowing()
	// A replica's stream starts only once its cursor is seeded from the peer (replica.go).
	seeded := make(chan struct{})
	replicaErr := make(chan error, 1)
	if cfg.ReplicaOf == "" {
		close(seeded)
	} else {
		peer, _ := source.Parse(cfg.ReplicaOf) // checked by loadConfig
		sources.ReplicaOf(peer)
		rep := &replica{peer: peer, client: sources, backfill: backfill, follower: follower, log: log, retry: 5 * time.Second}
		go func() {
			if err := rep.seed(followCtx); err != nil {
				replicaErr <- err
				return
			}
			close(seeded)
			rep.start(followCtx)
		}()
	}
	followDone := make(chan struct{})
	if follower == nil {
		close(followDone)
	} else {
		go func() {
			defer close(followDone)
			select {
			case <-seeded:
			case <-followCtx.Done():
				return
			}
			if err := follower.Run(followCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("firehose stopped", "error", err)
			}
		}()
	}

	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(backfill.River, nil),
		Logger:    log,
		Prefix:    "/riverui",
	})
	if err != nil {
		return fmt.Errorf("river ui: %w", err)
	}
	if err := ui.Start(workCtx); err != nil {
		return fmt.Errorf("start river ui: %w", err)
	}
	m.Registry.MustRegister(&jobs.Collector{Pool: pool, River: backfill.River, Logger: log})
	m.Registry.MustRegister(index.DiskCollector())

	srv := &api.Server{
		Backfill:      backfill,
		Index:         index,
		Pool:          pool,
		AdminPassword: cfg.AdminPassword,
		DefaultSource: cfg.DefaultSource,
		Logger:        log,
		Metrics:       m,
		RiverUI:       ui,
		Firehose:      follower,
		ReplicaOf:     cfg.ReplicaOf,
	}
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("colindex serving", "listen", ln.Addr().String(), "index_dir", absPath(cfg.IndexDir), "firehose", cfg.FirehoseURL,
		"concurrency", cfg.Concurrency, "page_limit", cfg.PageLimit, "page_pause", cfg.PagePause.String(),
		"source_rps", cfg.SourceRPS, "replica_of", cfg.ReplicaOf)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()
	var exitErr error // what stopped serve, when it was not a signal

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("http server stopped", "error", err)
	case err := <-replicaErr:
		if !errors.Is(err, context.Canceled) {
			log.Error("replica cannot start", "error", err)
			exitErr = err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clean := true
	if err := httpServer.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "error", err)
		clean = false
	}
	// The stream stops first: what it applied is flushed and its cursor saved on the way out.
	stopFollowing()
	select {
	case <-followDone:
	case <-shutdownCtx.Done():
		log.Warn("firehose did not stop in time")
		clean = false
	}
	if !backfill.StopWorkers(shutdownCtx, 10*time.Second) {
		clean = false
	}
	if !clean {
		// A handler or worker may still be inside the index: closing it under them would
		// crash the process.
		closeIndex = false
		return errUncleanStop
	}
	log.Info("stopped")
	return exitErr
}

// sweepAfterBackfill is the relay swept once the backfill's pages are done: the firehose's
// (followed, "" when it is disabled), unless turned off. A replica's pages come from its
// peer, which swept its own.
func sweepAfterBackfill(cfg config, followed string) string {
	if !cfg.SweepAfterBackfill || cfg.ReplicaOf != "" {
		return ""
	}
	return followed
}

// gapRepairSource is where a stream gap's refresh pages from (nil: gaps are only recorded):
// the default source, or a replica's peer.
func gapRepairSource(cfg config) (*source.Source, error) {
	if !cfg.GapRepair {
		return nil, nil
	}
	raw, name := cfg.DefaultSource, "COLINDEX_DEFAULT_SOURCE"
	if cfg.ReplicaOf != "" {
		raw, name = cfg.ReplicaOf, "COLINDEX_REPLICA_OF"
	}
	src, err := source.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s (the source of a stream gap's repair; COLINDEX_GAP_REPAIR=false turns it off): %w", name, err)
	}
	return &src, nil
}
