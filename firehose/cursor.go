package firehose

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/pgstore"
)

// LiveTail, as a cursor, starts the stream at the relay's newest event.
const LiveTail = -1

// Moved is the outcome of MoveCursor.
type Moved struct {
	// Previous is the cursor the move replaced, as read just before it; nil when none was
	// saved.
	Previous *int64
	// PreviousLiveAt is when the stream last stood at Previous: the time of its events
	// there (never later than its save), or, unknown, when it was saved (zero when none was).
	PreviousLiveAt time.Time
	// Generation is the move's generation: the follower that started from an older one stops
	// at its next save or check, within a second while events flow and keepAlive while they do
	// not, and follows again from the moved cursor.
	Generation int64
}

// MoveCursor makes seq this relay's cursor: the follower, in whichever process holds the lock,
// resumes with the events after seq, or at the live tail for LiveTail. Moving back replays
// events, which changes nothing twice (adds are idempotent, removals final); moving forward
// skips events (serve records the gap: jobs.RecordMoveGapTx). It is the way out when the
// relay answers FutureCursor because its sequence was reset, or because another relay now
// answers at its URL (the cursor is kept per URL).
func (f *Firehose) MoveCursor(ctx context.Context, seq int64) (Moved, error) {
	return f.MoveCursorWith(ctx, seq, nil)
}

// MoveCursorWith is MoveCursor, calling inTx (when set) in the move's transaction, before it
// commits: serve records there the gap a move forward opens, so the move and its gap land
// together or not at all.
func (f *Firehose) MoveCursorWith(ctx context.Context, seq int64, inTx func(ctx context.Context, tx pgx.Tx, m Moved) error) (Moved, error) {
	if seq < LiveTail {
		return Moved{}, fmt.Errorf("firehose: cursor %d: a seq is ≥ 0, or -1 for the live tail", seq)
	}
	var m Moved
	var row pgstore.FirehoseCursorMoveRow
	err := pgx.BeginFunc(ctx, f.cfg.Pool, func(tx pgx.Tx) error {
		var err error
		if row, err = queries.FirehoseCursorMove(ctx, tx, pgstore.FirehoseCursorMoveParams{Relay: f.relay, Seq: seq}); err != nil {
			return err
		}
		m = Moved{Generation: row.Generation}
		if row.Replaced {
			m.Previous, m.PreviousLiveAt = &row.Previous, row.PreviousLiveAt
		}
		if inTx != nil {
			return inTx(ctx, tx, m)
		}
		return nil
	})
	if err != nil {
		return Moved{}, fmt.Errorf("move the firehose cursor: %w", err)
	}
	f.log.Warn("firehose cursor moved by an operator", "replaced", row.Replaced, "from", row.Previous, "to", seq, "generation", row.Generation)
	return m, nil
}

// eventTime is an event's time field: when its PDS made the commit (or the event), as the
// relay passes it on. The cursor is saved with the median of those of the events it passed
// (medianTime): a gap's rev floor is read from it (jobs.RecordGapTx).
func eventTime(xev *events.XRPCStreamEvent) string {
	switch {
	case xev.RepoCommit != nil:
		return xev.RepoCommit.Time
	case xev.RepoSync != nil:
		return xev.RepoSync.Time
	case xev.RepoIdentity != nil:
		return xev.RepoIdentity.Time
	case xev.RepoAccount != nil:
		return xev.RepoAccount.Time
	}
	return ""
}

// medianTime is the median of the events' times (read as indigo reads a datetime), nil when
// none parses (the save's time then stands in). The median, not the cursor's own event's:
// each time is its PDS's clock, and one PDS's clock running late or early must not move a
// gap's floor.
func medianTime(times []string) *time.Time {
	parsed := make([]time.Time, 0, len(times))
	for _, at := range times {
		if dt, err := syntax.ParseDatetimeLenient(at); err == nil {
			parsed = append(parsed, dt.Time())
		}
	}
	if len(parsed) == 0 {
		return nil
	}
	slices.SortFunc(parsed, time.Time.Compare)
	return &parsed[(len(parsed)-1)/2]
}
