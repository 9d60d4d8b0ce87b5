package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

// colindex wait returns once the server answers, started before it; against nothing it gives
// up at its timeout with a clear message.
func TestCLIWaitReturnsOnceTheServerAnswers(t *testing.T) {
	t.Parallel()
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	svc := newService(t, relay)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := svc.cli(t, []string{"COLINDEX_URL=" + svc.base}, "wait", "--timeout", "2m")
		done <- result{out, err}
	}()
	svc.start()
	r := <-done
	require.NoError(t, r.err, r.out)
	require.Contains(t, r.out, "is serving")

	out, err := svc.cli(t, []string{"COLINDEX_URL=http://127.0.0.1:1"}, "wait", "--timeout", "1s")
	require.Error(t, err)
	require.Contains(t, out, "did not become healthy within 1s")
}
