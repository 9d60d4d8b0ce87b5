package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"
	"riverqueue.com/riverui"

	"github.com/colindex/colindex/api"
	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/metrics"
	"github.com/colindex/colindex/migrations"
	"github.com/colindex/colindex/rocksindex"
	"github.com/colindex/colindex/source"
)

func newApp() *cli.App {
	return &cli.App{
		Name:  "colindex",
		Usage: "build, backfill and serve an atproto collection index",
		Commands: append([]*cli.Command{
			{Name: "serve", Usage: "run the service", Flags: serveFlags(), Action: serve},
			{Name: "migrate", Usage: "apply database migrations and exit", Flags: []cli.Flag{databaseFlag, logFormatFlag}, Action: migrate},
			{Name: "reopen-all", Usage: "bind the database to the index in --index-dir and page every collection again (after an index was lost or replaced; stop serve first)",
				Flags: []cli.Flag{databaseFlag, logFormatFlag, indexDirFlag}, Action: reopenAll},
			{Name: "openapi", Usage: "print the OpenAPI document", Flags: []cli.Flag{
				&cli.BoolFlag{Name: "3.0", Usage: "print the OpenAPI 3.0.3 downgrade instead of 3.1"},
			}, Action: printOpenAPI},
		}, adminCommands()...),
	}
}

func migrate(c *cli.Context) error {
	log := newLogger(c.String("log-format"))
	pool, err := pgxpool.New(c.Context, c.String("database-url"))
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	n, err := migrations.Up(c.Context, pool)
	if err != nil {
		return err
	}
	log.Info("migrated", "applied", n)
	return nil
}

// reopenAll is the way back when serve refuses an index that is not the database's: every
// collection is reopened (cursor and counts zero) and the next start pages it into this index.
func reopenAll(c *cli.Context) error {
	log := newLogger(c.String("log-format"))
	pool, err := pgxpool.New(c.Context, c.String("database-url"))
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	if _, err := migrations.Up(c.Context, pool); err != nil {
		return err
	}
	// Opening takes RocksDB's lock: this fails clearly while a serve holds the index.
	index, err := rocksindex.Open(c.String("index-dir"))
	if err != nil {
		return err
	}
	defer index.Close()
	n, err := jobs.ReopenAll(c.Context, pool, index)
	if err != nil {
		return err
	}
	log.Info("every collection reopened; start a backfill to page them into this index",
		"collections", n, "index_dir", absPath(c.String("index-dir")))
	return nil
}

// absPath makes a relative index directory absolute for messages: ./data/index means
// something else from another working directory.
func absPath(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func printOpenAPI(c *cli.Context) error {
	oapi := (&api.Server{}).NewAPI(http.NewServeMux()).OpenAPI()
	var (
		b   []byte
		err error
	)
	if c.Bool("3.0") {
		b, err = oapi.Downgrade()
	} else {
		b, err = oapi.MarshalJSON()
	}
	if err != nil {
		return err
	}
	var pretty any
	if err := json.Unmarshal(b, &pretty); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(pretty)
}

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

	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		return err
	}

	index, err := rocksindex.Open(cfg.IndexDir)
	if err != nil {
		return err
	}
	defer index.Close()
	if err := jobs.BindIndex(ctx, pool, index, absPath(cfg.IndexDir)); err != nil {
		return err
	}

	src := source.NewClient(cfg.SourceRPS)
	riverClient, err := jobs.NewRiverClient(jobs.Config{
		Pool:        pool,
		Index:       index,
		Source:      src,
		Logger:      log,
		PageLimit:   cfg.PageLimit,
		PagePause:   cfg.PagePause,
		Concurrency: cfg.Concurrency,

		PageMaxAttempts: cfg.MaxAttempts,
	})
	if err != nil {
		return fmt.Errorf("river: %w", err)
	}
	// River runs on its own context: on SIGTERM it is stopped gracefully below, after the
	// HTTP server, so running pages finish (or roll back) before the index closes.
	riverCtx, cancelRiver := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRiver()
	// While this process lives, its River client's jobs are its own; once it dies, the next
	// start rescues them at once instead of waiting for River's rescuer.
	releaseClientLock, err := jobs.HoldClientLock(ctx, pool, riverClient.ID())
	if err != nil {
		return err
	}
	defer releaseClientLock()
	if err := riverClient.Start(riverCtx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	if n, err := jobs.RescueOrphans(ctx, pool, riverClient); err != nil {
		log.Warn("rescue jobs of a dead process; River's rescuer will", "error", err)
	} else if n > 0 {
		log.Info("rescued jobs left running by a process that died", "jobs", n)
	}

	ui, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(riverClient, nil),
		Logger:    log,
		Prefix:    "/riverui",
	})
	if err != nil {
		return fmt.Errorf("river ui: %w", err)
	}
	if err := ui.Start(riverCtx); err != nil {
		return fmt.Errorf("start river ui: %w", err)
	}

	metrics.Registry.MustRegister(&jobs.Collector{Pool: pool, River: riverClient, Logger: log})

	srv := &api.Server{
		Backfill: &jobs.Backfill{
			Pool:  pool,
			River: riverClient,
			Index: index,

			PageMaxAttempts: cfg.MaxAttempts,
			PagePause:       cfg.PagePause,
			Discoverer: &jobs.Discoverer{
				HTTP:           src.HTTP(),
				LexiconListURL: cfg.LexiconListURL,
				Index:          index,
			},
		},
		Index:         index,
		Pool:          pool,
		AdminPassword: cfg.AdminPassword,
		DefaultSource: cfg.DefaultSource,
		Logger:        log,
		RiverUI:       ui,
	}
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	log.Info("colindex serving", "listen", ln.Addr().String(), "index_dir", cfg.IndexDir,
		"concurrency", cfg.Concurrency, "page_limit", cfg.PageLimit, "page_pause", cfg.PagePause.String(),
		"source_rps", cfg.SourceRPS)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("http server stopped", "error", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clean := true
	if err := httpServer.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "error", err)
		clean = false
	}
	if err := riverClient.Stop(shutdownCtx); err != nil {
		log.Warn("river did not stop in time; cancelling running jobs", "error", err)
		hardCtx, cancelHard := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelHard()
		if err := riverClient.StopAndCancel(hardCtx); err != nil {
			clean = false
		}
	}
	if !clean {
		// A handler or worker may still be inside the index: closing it under them would
		// crash. Every write was synced, so leaving without Close loses nothing.
		log.Warn("stopped without closing the index: work was still running")
		os.Exit(1)
	}
	log.Info("stopped")
	return nil
}
