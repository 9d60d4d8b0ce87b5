package testlog

import (
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what is logged.
type recorder struct {
	testing.TB
	lines    []string
	cleanups []func()
}

func (r *recorder) Log(args ...any) {
	for _, a := range args {
		r.lines = append(r.lines, a.(string))
	}
}
func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func TestWarningsReachTheTestLogAndDebugDoesNot(t *testing.T) {
	r := &recorder{TB: t}
	log := New(r)
	log.Info("routine")
	log.Warn("dropped frame", "seq", 7)
	log.Error("index read failed")
	if len(r.lines) != 2 || !strings.Contains(r.lines[0], "dropped frame") || !strings.Contains(r.lines[0], "seq=7") ||
		!strings.Contains(r.lines[1], "index read failed") {
		t.Fatalf("logged %q", r.lines)
	}
	for _, f := range r.cleanups {
		f()
	}
	log.Error("after the test")
	if len(r.lines) != 2 {
		t.Fatalf("a record after the cleanups reached the test: %q", r.lines)
	}
}
