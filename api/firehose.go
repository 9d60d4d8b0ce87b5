package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/firehose"
	"github.com/colindex/colindex/jobs"
)

// FirehoseStatus is the stream follower's state, as GET /admin/firehose shows it.
type FirehoseStatus struct {
	// Enabled is false when COLINDEX_FIREHOSE_URL is empty: nothing follows the relay.
	Enabled bool `json:"enabled" doc:"False when the firehose is disabled (COLINDEX_FIREHOSE_URL empty)."`
	firehose.Status
	// RemovalsByCause and VerifyJobs cover removals wherever they come from: the stream, and
	// the verify jobs this process runs.
	RemovalsByCause map[string]int64     `json:"removals_by_cause" doc:"(collection, DID) pairs this process removed since it started, by cause: proof (the commit's MST blocks showed the last record of the collection gone), pds_check (the account's PDS listed no record), account_deletion (#account deleted), sync (a describeRepo, after a #sync or a sweep, no longer lists the collection), sweep (a sweep of the relay's account list found the account deleted)."`
	VerifyJobs      jobs.VerifyJobCounts `json:"verify_jobs" doc:"Checks with accounts' PDSes: queued (across processes), done and failed (this process)."`
	// Gaps are read from Postgres: every process shows them, and a restart does not lose them.
	Gaps   []jobs.Gap   `json:"gaps" doc:"Gaps in the stream (events after a cursor that were never applied: the relay's OutdatedCursor or FutureCursor, or an operator's cursor move), every open one and the latest few, newest first. While a gap is open the index may miss what happened in it; its refresh and its account sweep repair it."`
	Sweeps []jobs.Sweep `json:"sweeps" doc:"Sweeps of the relay's account list (a gap's, or an operator's: POST /admin/sweeps), every unfinished one and the latest few, newest first."`
}

type firehoseOutput struct{ Body FirehoseStatus }

func (s *Server) registerFirehose(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "getFirehoseStatus",
		Method:      http.MethodGet,
		Path:        "/admin/firehose",
		Summary:     "Read the firehose follower's state",
		Description: "Whether this process follows the relay's subscribeRepos (one process per database does), " +
			"whether it is connected, the durable cursor (the seq of the last event whose effects are durable in " +
			"the index), the newest event's time and lag, counters since the process started, and the gaps in the stream " +
			"with their repair.",
		Tags:   []string{"firehose"},
		Errors: adminErrors(),
	}, s.firehoseStatus)
	huma.Register(api, huma.Operation{
		OperationID: "moveFirehoseCursor",
		Method:      http.MethodPut,
		Path:        "/admin/firehose/cursor",
		Summary:     "Move the firehose cursor",
		Description: "Makes cursor the durable cursor of the configured relay: the follower (in whichever process " +
			"follows) notices within a few seconds, and resumes with the events after it, or at the relay's live " +
			"tail for -1. Moving back replays events, which changes nothing twice (adds are idempotent, removals " +
			"final); moving forward or to the live tail skips events, and so does any move from a cursor the relay answered " +
			"with FutureCursor: such a move records a gap in the stream after the previous cursor (gap_id), repaired by a " +
			"refresh as the relay's OutdatedCursor is. This is " +
			"the way out when the relay answers FutureCursor (its sequence was reset, so the saved cursor is ahead " +
			"of it): the follower never picks a new cursor by itself. 409 when the firehose is disabled.",
		Tags:   []string{"firehose"},
		Errors: adminErrors(http.StatusConflict),
	}, s.moveFirehoseCursor)
}

// MovedCursor is the answer to PUT /admin/firehose/cursor.
type MovedCursor struct {
	URL        string `json:"url" doc:"The relay whose cursor moved."`
	Cursor     int64  `json:"cursor" doc:"The cursor now saved (-1: the live tail)."`
	Previous   *int64 `json:"previous" doc:"The cursor it replaced, as read just before the move (-1: the live tail); null when none was saved."`
	Generation int64  `json:"generation" doc:"The move's number; a follower that began from an earlier one stops and follows again from this cursor."`
	GapID      *int64 `json:"gap_id,omitempty" doc:"The gap in the stream the move opened: a move forward or to the live tail skips the events after the previous cursor, as does any move from a cursor the relay answered with FutureCursor; the gap is listed by GET /admin/firehose and repaired like the relay's OutdatedCursor. Absent for a move back, which replays."`
}

type moveCursorInput struct {
	Body struct {
		Cursor int64 `json:"cursor" minimum:"-1" doc:"The seq of the last event to count as applied: the stream resumes after it. -1 starts at the relay's live tail."`
	}
}

type movedCursorOutput struct{ Body MovedCursor }

func (s *Server) moveFirehoseCursor(ctx context.Context, in *moveCursorInput) (*movedCursorOutput, error) {
	if s.Firehose == nil {
		return nil, huma.Error409Conflict("the firehose is disabled (COLINDEX_FIREHOSE_URL is empty): there is no cursor to move")
	}
	seq := in.Body.Cursor
	var gap *jobs.Gap
	recorded := func() {}
	m, err := s.Firehose.MoveCursorWith(ctx, seq, func(ctx context.Context, tx pgx.Tx, m firehose.Moved) error {
		var err error
		gap, recorded, err = s.Backfill.RecordMoveGapTx(ctx, tx, s.Firehose.Relay(), m, seq)
		return err
	})
	if err != nil {
		return nil, s.internal(ctx, "move the firehose cursor", err)
	}
	recorded()
	out := MovedCursor{URL: s.Firehose.Relay(), Cursor: seq, Previous: m.Previous, Generation: m.Generation}
	if gap != nil {
		out.GapID = &gap.ID
	}
	return &movedCursorOutput{Body: out}, nil
}

func (s *Server) firehoseStatus(ctx context.Context, _ *struct{}) (*firehoseOutput, error) {
	out := FirehoseStatus{Status: firehose.Status{Cursor: -1}, RemovalsByCause: s.metricSet().RemovalsByCause()}
	if s.Firehose != nil {
		out.Enabled, out.Status = true, s.Firehose.Status()
	}
	var err error
	if out.VerifyJobs, err = s.Backfill.VerifyJobs(ctx); err != nil {
		return nil, huma.Error500InternalServerError("count verify jobs", err)
	}
	if out.Gaps, err = s.Backfill.Gaps(ctx); err != nil {
		return nil, s.internal(ctx, "list stream gaps", err)
	}
	if out.Sweeps, err = s.Backfill.Sweeps(ctx); err != nil {
		return nil, s.internal(ctx, "list account sweeps", err)
	}
	return &firehoseOutput{Body: out}, nil
}
