//go:build chaos

// The slow crash tests: make chaos runs them (go test -tags chaos).

package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/internal/testrelay"
)

const chaosKills = 12

// TestChaosRandomKills kills colindex serve with SIGKILL at random moments during a backfill
// of more than 500,000 pairs, restarting it each time without any admin call, and then
// checks that the index holds exactly what the source served.
func TestChaosRandomKills(t *testing.T) {
	relay := testrelay.New()
	t.Cleanup(relay.Close)
	names := chaosDataset(relay)
	relay.SetLLMsTxt(testrelay.LexiconList(names...))
	pairs := 0
	for _, n := range names {
		pairs += len(relay.Collection(n))
	}
	require.GreaterOrEqual(t, pairs, 500_000)

	// A cap of 2 requests/s stretches the ~640 pages over five minutes, so a dozen kills
	// (each followed by up to a minute of rescue) all land mid-flight.
	svc := newService(t, relay, "COLINDEX_PAGE_LIMIT=1000", "COLINDEX_PAGE_PAUSE=0s",
		"COLINDEX_CONCURRENCY=4", "COLINDEX_SOURCE_RPS=2")
	svc.start()
	code, body := svc.call(http.MethodPost, "/admin/backfill-collections")
	require.Equal(t, http.StatusOK, code, string(body))

	var resumes []time.Duration
	for kill := 1; kill <= chaosKills; kill++ {
		// Let it page for a random while, then kill it mid-flight.
		time.Sleep(time.Duration(500+rand.IntN(2500)) * time.Millisecond)
		st, _ := svc.status()
		if st.Completed == st.Total {
			t.Logf("backfill finished before kill %d", kill)
			break
		}
		_ = svc.stop(syscall.SIGKILL)
		restarted := time.Now()
		svc.start()
		resume := svc.waitResumed(restarted)
		resumes = append(resumes, resume)
		t.Logf("kill %2d: %d/%d collections complete, %d DIDs imported; every interrupted chain resumed %.1f s after the restart",
			kill, st.Completed, st.Total, st.TotalImported, resume.Seconds())
		require.Less(t, resume, time.Minute, "kill %d: resume took longer than a minute", kill)
	}
	require.GreaterOrEqual(t, len(resumes), 10, "at least ten kills landed mid-backfill")

	compared := svc.requireExactly(relay, names, 10*time.Minute)
	slices.Sort(resumes)
	t.Logf("%d kills survived; %d pairs compared; resume p50 %.1f s, max %.1f s",
		len(resumes), compared, resumes[len(resumes)/2].Seconds(), resumes[len(resumes)-1].Seconds())
}

// chaosDataset fills the relay with 40 collections, 1/rank sizes, 600,000 pairs in all.
func chaosDataset(relay *testrelay.Relay) []string {
	var names []string
	sizes := []int{}
	total := 0
	for i := range 40 {
		n := 140_000 / (i + 1)
		sizes = append(sizes, n)
		total += n
	}
	for i, n := range sizes {
		name := fmt.Sprintf("com.chaos.c%02d", i)
		dids := make([]string, n)
		for j := range dids {
			dids[j] = fmt.Sprintf("did:plc:%024d", (j*7919+i*104729)%2_000_003)
		}
		relay.Append(name, dids...)
		names = append(names, name)
	}
	return names
}
