// Package testlog gives tests a logger whose warnings and errors reach the test's own log:
// shown when the test fails (or with -v), so a 500 or a dropped frame in a failing test
// says why, and silent otherwise.
package testlog

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// New returns a logger writing records at level Warn and above to t.Log. Records logged after
// the test and its cleanups have finished (a worker still winding down) are dropped: t.Log
// would panic then.
func New(t testing.TB) *slog.Logger {
	w := &writer{t: t}
	t.Cleanup(w.close) // after every cleanup registered later: call New before starting workers
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type writer struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Helper()
		w.t.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	}
	return len(p), nil
}

func (w *writer) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
