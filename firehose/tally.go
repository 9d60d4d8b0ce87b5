package firehose

import "github.com/colindex/colindex/firehose/proof"

// tally holds what a batch of events counts until the batch is applied. A batch that fails is
// received again after the reconnect (sched.go), so counting as the events go by would count
// its events twice; counting when it is applied counts each event once. It covers the counters
// of events (events_total, commits_total, the events metric by type), of skipped input (the
// bad-events metric) and of deletes the proof could not settle (removals_undecided). The
// counters of index writes (pairs added and removed, accounts removed) need no tally: they
// count what a write changed, and a replayed write changes nothing.
type tally struct {
	commitEvents int64            // #commit events, valid or not
	events       map[string]int64 // the other events, by type
	commits      int64            // commits applied (one with a bad DID is skipped whole)
	bad          map[string]int64 // skipped input, by reason
	undecided    map[proof.Reason]int64
}

func (t *tally) event(kind string) {
	if kind == "commit" {
		t.commitEvents++ // the hot path: no map
		return
	}
	t.events = inc(t.events, kind)
}

func (t *tally) badInput(reason string) { t.bad = inc(t.bad, reason) }

func (t *tally) undecidedDelete(reason proof.Reason) { t.undecided = inc(t.undecided, reason) }

func inc[K comparable](m map[K]int64, k K) map[K]int64 {
	if m == nil {
		m = map[K]int64{}
	}
	m[k]++
	return m
}

// count adds an applied batch's tally to the follower's counters and metrics.
func (f *Firehose) count(t *tally) {
	n := t.commitEvents
	if n > 0 {
		f.commitEvents.Add(float64(n))
	}
	for kind, c := range t.events {
		n += c
		f.metrics.FirehoseEvents.WithLabelValues(kind).Add(float64(c))
	}
	f.st.events.Add(n)
	f.st.commits.Add(t.commits)
	for reason, c := range t.bad {
		f.metrics.FirehoseBadEvents.WithLabelValues(reason).Add(float64(c))
	}
	for reason, c := range t.undecided {
		f.st.undecided.Add(c)
		f.metrics.FirehoseRemovalUndecided.WithLabelValues(string(reason)).Add(float64(c))
	}
}
