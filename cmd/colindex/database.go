package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// invalidCatalogName is Postgres's SQLSTATE for a database that does not exist.
const invalidCatalogName = "3D000"

// ensureDatabase creates the database DATABASE_URL names when the server says it does not
// exist, connecting to the server's maintenance database (postgres) with the same
// credentials. Without the right to create databases, it says how to create it.
func ensureDatabase(ctx context.Context, databaseURL string, log *slog.Logger) error {
	// Parsed as the pool parses it, so pool settings (pool_max_conns) are not sent to the
	// server as if they were its own.
	poolCfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg := poolCfg.ConnConfig
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != invalidCatalogName {
		return fmt.Errorf("database: %w", err)
	}
	name := cfg.Database
	maint := cfg.Copy()
	maint.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, maint)
	if err != nil {
		return fmt.Errorf("database %q does not exist, and the server's postgres database cannot be reached to create it (%w); create it with: createdb %s", name, err, name)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another start
			return nil
		}
		return fmt.Errorf("database %q does not exist and could not be created (%w); create it with: createdb %s", name, err, name)
	}
	log.Info("created the database", "database", name)
	return nil
}

// poolConfig is serve's pool: pgx's default (4 connections on 2 cores) starves the page
// workers, each of which holds a connection through its page's transaction, and River, which
// needs its own (measured at concurrency 8: 2,939 of 6,738 acquisitions waited, 31.7 s in
// all, against 13 with 16 connections). The pool gets the workers plus room for River, the
// stream's cursor saves and the API, unless DATABASE_URL sets pool_max_conns.
func poolConfig(databaseURL string, concurrency int) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		cfg.MaxConns = int32(concurrency + 8)
	}
	return cfg, nil
}
