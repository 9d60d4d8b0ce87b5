package await

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records a failure instead of failing, so Until's own failure can be checked.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	for _, a := range args {
		f.failed += " " + describe(a)
	}
	panic(f) // Fatal does not return: stop Until as runtime.Goexit would
}

func run(tb *fakeTB, timeout time.Duration, cond func() (bool, any)) {
	defer func() {
		if r := recover(); r != nil && r != tb {
			panic(r)
		}
	}()
	Until(tb, timeout, "the thing", cond)
}

func TestUntil(t *testing.T) {
	t.Parallel()
	t.Run("returns once the condition holds", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		tb := &fakeTB{TB: t}
		run(tb, 5*time.Second, func() (bool, any) { return calls.Add(1) == 3, calls.Load() })
		if tb.failed != "" || calls.Load() != 3 {
			t.Fatalf("failed %q after %d calls", tb.failed, calls.Load())
		}
	})
	t.Run("fails at the deadline with what it last saw", func(t *testing.T) {
		t.Parallel()
		tb := &fakeTB{TB: t}
		start := time.Now()
		n := 0
		run(tb, 50*time.Millisecond, func() (bool, any) { n++; return false, "state " + string(rune('0'+n%10)) })
		took := time.Since(start)
		if !strings.Contains(tb.failed, "the thing") || !strings.Contains(tb.failed, "state") {
			t.Fatalf("failure %q does not name the wait and the last state", tb.failed)
		}
		if took < 50*time.Millisecond || took > 2*time.Second {
			t.Fatalf("gave up after %s, not at the 50ms deadline", took)
		}
	})
}
