// Command colindex builds, backfills and serves an atproto collection index.
//
//	colindex serve     migrate, open the index, run the backfill workers and the HTTP server
//	colindex migrate   apply River's and colindex's migrations, then exit
//	colindex openapi   print the OpenAPI document (no database needed)
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/joho/godotenv"
)

func main() {
	if err := loadDotEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "colindex:", err)
		os.Exit(1)
	}
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "colindex:", err)
		os.Exit(1)
	}
}

// loadDotEnv lets variables from .env fill in what the environment does not set (the
// environment wins). It reads ./.env or, when the working directory has none and the
// executable sits in a bin directory, the .env beside that: bin/../.env, where make run keeps
// it, so a checkout's ./bin/colindex works from any directory. (Only bin/: a binary elsewhere,
// such as go run's or a test's in a temporary directory, never picks up a stray .env.)
func loadDotEnv() error {
	path := ".env"
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		exe, err := os.Executable()
		if err != nil {
			return nil // no executable path (rare): only ./.env is looked for
		}
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved // a symlink to a checkout's bin/colindex finds the checkout's .env
		}
		bin := filepath.Dir(exe)
		if filepath.Base(bin) != "bin" {
			return nil
		}
		path = filepath.Join(filepath.Dir(bin), ".env")
	}
	if err := godotenv.Load(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
