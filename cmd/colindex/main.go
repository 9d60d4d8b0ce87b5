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

	"github.com/joho/godotenv"
)

func main() {
	// Variables from ./.env fill in what the environment does not set (the environment wins).
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "colindex: .env:", err)
		os.Exit(1)
	}
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "colindex:", err)
		os.Exit(1)
	}
}
