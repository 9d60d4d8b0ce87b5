package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/colindex/colindex/api"
	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/migrations"
	"github.com/colindex/colindex/rocksindex"
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
