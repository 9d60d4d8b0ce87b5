package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// serve's pool has room for every page worker and River; a pool_max_conns in DATABASE_URL
// wins; and neither the pool nor the database check sends pool settings to the server.
func TestPoolConfigSizesThePoolForTheWorkers(t *testing.T) {
	t.Parallel()
	t.Run("sized from the concurrency", func(t *testing.T) {
		t.Parallel()
		cfg, err := poolConfig("postgres://u@127.0.0.1:5432/db", 8)
		require.NoError(t, err)
		require.EqualValues(t, 16, cfg.MaxConns)
	})
	t.Run("pool_max_conns wins and is not a server setting", func(t *testing.T) {
		t.Parallel()
		cfg, err := poolConfig("postgres://u@127.0.0.1:5432/db?pool_max_conns=3", 8)
		require.NoError(t, err)
		require.EqualValues(t, 3, cfg.MaxConns)
		require.NotContains(t, cfg.ConnConfig.RuntimeParams, "pool_max_conns")
	})
}
