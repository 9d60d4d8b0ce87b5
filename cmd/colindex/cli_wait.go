package main

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"
)

// waitCommand waits until the server answers /_health with 200, so a script can start
// `make run &` and go on once it serves (the first build takes a minute). It needs no
// password: /_health is public.
func waitCommand(c *cli.Context) error {
	url := ""
	if raw := cmp.Or(c.String("url"), firstSet("COLINDEX_URL", "ZLAY_DOMAIN")); raw != "" {
		url = serverURL(raw)
	} else {
		var err error
		if url, err = listenURL(os.Getenv("COLINDEX_LISTEN")); err != nil {
			return err
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(c.Duration("timeout"))
	last := "no answer"
	for {
		resp, err := client.Get(url + "/_health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(c.App.Writer, "colindex at %s is serving\n", url)
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("colindex at %s did not become healthy within %s (last: %s)", url, c.Duration("timeout"), last)
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
