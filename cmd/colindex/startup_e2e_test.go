package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/pgtest"
	"github.com/colindex/colindex/internal/testrelay"
)

// serve against a database that does not exist yet creates it, instead of failing with
// SQLSTATE 3D000.
func TestServeCreatesItsDatabase(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "colindex_created_" + hex.EncodeToString(rnd[:])
	u, err := url.Parse(pgtest.AdminURL())
	require.NoError(t, err)
	u.Path = "/" + name
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, pgtest.AdminURL()); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	svc := newService(t, relay, "DATABASE_URL="+u.String())
	svc.start() // healthy: migrated and serving
	require.Contains(t, svc.logs.String(), `"msg":"created the database"`)
}

// A second serve on an index another one holds names the holder.
func TestSecondServeOnOneIndexSaysWhoHoldsIt(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	svc.start()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	other := ln.Addr().String()
	require.NoError(t, ln.Close())
	out, err := svc.runOnce([]string{"COLINDEX_LISTEN=" + other}, "serve")
	require.Error(t, err, out)
	require.Contains(t, out, "another colindex (pid "+strconv.Itoa(svc.cmd.Process.Pid))
	require.Contains(t, out, "listening on "+svc.base[len("http://"):])
}
