// Package await is the tests' one way to wait for something that happens in the background:
// poll a condition until it holds or a deadline passes, then fail with what was last seen.
// It replaces fixed sleeps standing in for assertions (too short on a slow machine, wasted
// time on a fast one) and polling loops without a deadline (a test that hangs instead of
// failing, until go test's ten-minute timeout kills the whole package).
package await

import (
	"fmt"
	"testing"
	"time"
)

// Until calls cond until it reports done or timeout passes, sleeping between calls (5 ms at
// first, doubling to at most 100 ms, so quick conditions are seen quickly and slow ones do
// not spin). On timeout it fails the test, naming what it waited for and the last value cond
// reported. cond runs on the test's goroutine, so it may call require itself.
func Until(t testing.TB, timeout time.Duration, what string, cond func() (done bool, seen any)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for {
		done, seen := cond()
		if done {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("waited %s for %s; last seen: %s", timeout, what, describe(seen))
		}
		time.Sleep(min(pause, time.Until(deadline)+time.Millisecond))
		pause = min(2*pause, 100*time.Millisecond)
	}
}

func describe(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprintf("%+v", v)
}
