package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/colindex/colindex/jobs"
	"github.com/colindex/colindex/source"
)

// config is serve's typed configuration; flags win over environment variables.
type config struct {
	DatabaseURL    string
	AdminPassword  string
	Listen         string
	IndexDir       string
	LexiconListURL string
	FirehoseURL    string
	PLCURL         string
	PDSRate        float64
	AllowPrivate   bool
	DefaultSource  string
	PageLimit      int
	PagePause      time.Duration
	Concurrency    int
	MaxAttempts    int
	SourceRPS      float64
	LogFormat      string
	// ReplicaOf is the colindex this one copies (replica mode); empty for a standalone.
	ReplicaOf string
	// GapRepair starts a refresh run for each gap in the stream (jobs/gaps.go).
	GapRepair bool
	// SweepAfterBackfill sweeps the firehose's relay once the backfill's pages are done
	// (jobs/sweep_after.go).
	SweepAfterBackfill bool
	// Warnings are what serve logs at start (no logger exists yet here): settings that work
	// but should change. They never quote the password.
	Warnings []string
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/colindex?sslmode=disable"

var databaseFlag = &cli.StringFlag{
	Name: "database-url", EnvVars: []string{"DATABASE_URL"}, Value: defaultDatabaseURL,
	Usage: "Postgres connection URL",
}

var indexDirFlag = &cli.StringFlag{
	Name: "index-dir", EnvVars: []string{"COLINDEX_INDEX_DIR"}, Value: "./data/index",
	Usage: "RocksDB collection index directory (bound to the database: see reopen-all)",
}

var logFormatFlag = &cli.StringFlag{
	Name: "log-format", EnvVars: []string{"COLINDEX_LOG_FORMAT"}, Value: "json",
	Usage: "json, or text for a terminal",
}

func serveFlags() []cli.Flag {
	return []cli.Flag{
		databaseFlag,
		logFormatFlag,
		&cli.StringFlag{Name: "admin-password", EnvVars: []string{"RELAY_ADMIN_PASSWORD"},
			Usage: "bearer token for the admin API and River UI (required)"},
		&cli.StringFlag{Name: "listen", EnvVars: []string{"COLINDEX_LISTEN"}, Value: ":2510",
			Usage: "HTTP listen address"},
		indexDirFlag,
		&cli.StringFlag{Name: "firehose-url", EnvVars: []string{"COLINDEX_FIREHOSE_URL"}, Value: "wss://bsky.network",
			Usage: "relay whose com.atproto.sync.subscribeRepos keeps the index current (ws:// or wss:// base URL); empty disables it"},
		&cli.StringFlag{Name: "plc-url", EnvVars: []string{"COLINDEX_PLC_URL"}, Value: jobs.DefaultPLCURL,
			Usage: "PLC directory that resolves did:plc, to ask an account's PDS about deletes the stream's proof cannot settle"},
		&cli.Float64Flag{Name: "pds-rps", EnvVars: []string{"COLINDEX_PDS_RPS"}, Value: jobs.DefaultPDSRate,
			Usage: "most requests per second to any one PDS (negative: no cap)"},
		&cli.BoolFlag{Name: "verify-allow-private", EnvVars: []string{"COLINDEX_VERIFY_ALLOW_PRIVATE"},
			Usage: "let PDS checks reach loopback and private addresses and any port (only where PDSes live on a private network: anyone can write a DID document)"},
		&cli.StringFlag{Name: "lexicon-list-url", EnvVars: []string{"COLINDEX_LEXICON_LIST_URL"},
			Value: "https://lexicon.garden/llms.txt", Usage: "Lexicon Garden llms.txt for discovery; empty disables it"},
		&cli.StringFlag{Name: "default-source", EnvVars: []string{"COLINDEX_DEFAULT_SOURCE"}, Value: "bsky.network",
			Usage: "source relay when a start request names none"},
		&cli.IntFlag{Name: "page-limit", EnvVars: []string{"COLINDEX_PAGE_LIMIT"}, Value: jobs.DefaultPageLimit,
			Usage: fmt.Sprintf("DIDs asked per page (1..%d)", source.MaxLimit)},
		&cli.DurationFlag{Name: "page-pause", EnvVars: []string{"COLINDEX_PAGE_PAUSE"}, Value: jobs.DefaultPagePause,
			Usage: "least time between two pages of one collection"},
		&cli.IntFlag{Name: "concurrency", EnvVars: []string{"COLINDEX_CONCURRENCY"}, Value: jobs.DefaultConcurrency,
			Usage: "collections paged at once"},
		&cli.IntFlag{Name: "page-max-attempts", EnvVars: []string{"COLINDEX_PAGE_MAX_ATTEMPTS"}, Value: jobs.DefaultPageMaxAttempts,
			Usage: "attempts per page before its collection stops with the error (backoff 1 s … 5 min)"},
		&cli.Float64Flag{Name: "source-rps", EnvVars: []string{"COLINDEX_SOURCE_RPS"}, Value: 10,
			Usage: "most requests per second to one source, over all collections (0: no cap)"},
		&cli.BoolFlag{Name: "gap-repair", EnvVars: []string{"COLINDEX_GAP_REPAIR"}, Value: true,
			Usage: "when events after the saved cursor were never applied (the relay's OutdatedCursor or FutureCursor, a cursor moved past them), page every collection again from the default source (a replica: its peer) to put back the adds they carried; false only records the gap"},
		&cli.BoolFlag{Name: "sweep-after-backfill", EnvVars: []string{"COLINDEX_SWEEP_AFTER_BACKFILL"}, Value: true,
			Usage: "once the backfill's pages are done, sweep the firehose's relay: accounts the source still lists that the relay holds deleted leave the index, inactive ones are hidden (needs the firehose; a replica never does: its peer did)"},
		&cli.StringFlag{Name: "replica-of", EnvVars: []string{"COLINDEX_REPLICA_OF"},
			Usage: "replica mode: copy this colindex (http(s)://host:port), then follow the same firehose; /_health answers 503 until ready"},
	}
}

func loadConfig(c *cli.Context) (config, error) {
	cfg := config{
		DatabaseURL:    c.String("database-url"),
		AdminPassword:  c.String("admin-password"),
		Listen:         c.String("listen"),
		IndexDir:       c.String("index-dir"),
		LexiconListURL: c.String("lexicon-list-url"),
		FirehoseURL:    strings.TrimSpace(c.String("firehose-url")),
		PLCURL:         c.String("plc-url"),
		PDSRate:        c.Float64("pds-rps"),
		AllowPrivate:   c.Bool("verify-allow-private"),
		DefaultSource:  c.String("default-source"),
		PageLimit:      c.Int("page-limit"),
		PagePause:      c.Duration("page-pause"),
		Concurrency:    c.Int("concurrency"),
		MaxAttempts:    c.Int("page-max-attempts"),
		SourceRPS:      c.Float64("source-rps"),
		LogFormat:      c.String("log-format"),
		ReplicaOf:      strings.TrimSpace(c.String("replica-of")),
		GapRepair:      c.Bool("gap-repair"),

		SweepAfterBackfill: c.Bool("sweep-after-backfill"),
	}
	switch {
	case cfg.AdminPassword == "":
		return cfg, fmt.Errorf("RELAY_ADMIN_PASSWORD (or --admin-password) is required: the admin API would be open to anyone")
	case cfg.PageLimit < 1 || cfg.PageLimit > source.MaxLimit:
		return cfg, fmt.Errorf("COLINDEX_PAGE_LIMIT must be 1..%d, not %d", source.MaxLimit, cfg.PageLimit)
	case cfg.PagePause < 0:
		return cfg, fmt.Errorf("COLINDEX_PAGE_PAUSE must not be negative")
	case cfg.Concurrency < 1:
		return cfg, fmt.Errorf("COLINDEX_CONCURRENCY must be at least 1, not %d", cfg.Concurrency)
	case cfg.MaxAttempts < 1:
		return cfg, fmt.Errorf("COLINDEX_PAGE_MAX_ATTEMPTS must be at least 1, not %d", cfg.MaxAttempts)
	case cfg.SourceRPS < 0:
		return cfg, fmt.Errorf("COLINDEX_SOURCE_RPS must not be negative")
	}
	if cfg.ReplicaOf != "" {
		if _, err := source.Parse(cfg.ReplicaOf); err != nil {
			return cfg, fmt.Errorf("COLINDEX_REPLICA_OF: %w", err)
		}
	}
	if len(cfg.AdminPassword) < 16 {
		cfg.Warnings = append(cfg.Warnings, "RELAY_ADMIN_PASSWORD is shorter than 16 characters; use a long random one")
	}
	if adminPasswordFromFlag(cfg.AdminPassword, os.Getenv("RELAY_ADMIN_PASSWORD"), os.Args[1:]) {
		cfg.Warnings = append(cfg.Warnings, "the admin password was given with --admin-password, which "+
			"other users of this machine can read in the process list (ps); set RELAY_ADMIN_PASSWORD "+
			"(in the environment or .env) instead")
	}
	return cfg, nil
}

// adminPasswordFromFlag tells whether serve's password came from the command line, where
// ps shows it. The flag wins over RELAY_ADMIN_PASSWORD, so a password other than the
// variable's (fromEnv) came from the flag; args catch the flag given with the variable's own
// value.
func adminPasswordFromFlag(password, fromEnv string, args []string) bool {
	if password != "" && password != fromEnv {
		return true
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "admin-password" {
			return true
		}
	}
	return false
}

func newLogger(format string) *slog.Logger {
	if format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, nil))
}
