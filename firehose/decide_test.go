package firehose

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/colindex/colindex/firehose/proof"
	"github.com/colindex/colindex/internal/fakerelay"
)

// A commit's deletes are decided ahead of the applier by the scheduler's deciders; a
// decision the queue has no room for gets a goroutine of its own, and one whose connection
// ended before it ran is decided by the applier if it still asks. Each way, the applier gets
// the verdicts of the commit's proof.
func TestDecidersGiveTheProofsVerdicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	f, err := New(b.config(b.ix))
	require.NoError(t, err)
	a := newAccount(t, 100)
	_, err = a.Commit(fakerelay.Create(post, "3k0001"), fakerelay.Create(like, "3k0002"), fakerelay.Create(like, "3k0003"))
	require.NoError(t, err)
	// The post was the account's last; another like is left.
	evt, err := a.Commit(fakerelay.Delete(post, "3k0001"), fakerelay.Delete(like, "3k0002"))
	require.NoError(t, err)
	want := map[string]proof.Outcome{post: proof.Gone, like: proof.Kept}

	stop := make(chan struct{})
	defer close(stop)
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name    string
		ds      *deciders
		ctx     context.Context
		decided bool // whether the decision itself holds verdicts
	}{
		{"queued", f.startDeciders(stop), t.Context(), true},
		{"queue full", &deciders{f: f, queue: make(chan *decision)}, t.Context(), true}, // no room, no workers
		{"connection ended", f.startDeciders(stop), ended, false},
	} {
		tc.ds.ahead(tc.ctx, evt)
		v, ok := f.decisions.Load(evt)
		require.True(t, ok, tc.name)
		d := v.(*decision)
		select {
		case <-d.done:
		case <-time.After(time.Minute):
			t.Fatalf("%s: the decision never finished", tc.name)
		}
		require.Equal(t, tc.decided, d.verdicts != nil, tc.name)
		verdicts, err := f.verdicts(t.Context(), evt)
		require.NoError(t, err, tc.name)
		got := map[string]proof.Outcome{}
		for coll, v := range verdicts {
			got[coll] = v.Outcome
		}
		require.Equal(t, want, got, tc.name)
		_, left := f.decisions.Load(evt)
		require.False(t, left, "%s: the applier's question takes the decision out", tc.name)
	}
}
