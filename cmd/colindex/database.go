package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// invalidCatalogName is Postgres's SQLSTATE for a database that does not exist.
const invalidCatalogName = "3D000"

// ensureDatabase creates the database DATABASE_URL names when the server says it does not
// exist, connecting to the server's maintenance database (postgres) with the same
// credentials. Without the right to create databases, it says how to create it.
func ensureDatabase(ctx context.Context, databaseURL string, log *slog.Logger) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
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
