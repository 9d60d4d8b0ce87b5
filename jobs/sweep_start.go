package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/colindex/colindex/internal/pgstore"
)

// Starting sweeps and reading them: what the admin API and a gap's record call (sweep.go has
// the job).

// Sweep is one sweep, as the status lists it.
type Sweep struct {
	ID              int64      `json:"id"`
	Relay           string     `json:"relay" doc:"The relay whose account list (com.atproto.sync.listRepos) is walked."`
	Reason          string     `json:"reason" enum:"operator,gap,backfill" doc:"Why it began: an operator asked (colindex sweep); a gap in the stream; or the backfill wrote pages after the last sweep began to walk the index (a source such as bsky.network still lists accounts deleted long ago)."`
	GapID           *int64     `json:"gap_id,omitempty" doc:"The stream gap it repairs, for a gap's sweep."`
	RevsAfter       *time.Time `json:"revs_after,omitempty" doc:"Active accounts whose repo changed at or after this time (their rev) are re-learned from their PDS. Absent: statuses only."`
	Cursor          string     `json:"cursor,omitempty" doc:"The relay's cursor of the next page."`
	Pages           int64      `json:"pages"`
	Repos           int64      `json:"repos" doc:"Accounts read from the relay."`
	Skipped         int64      `json:"skipped" doc:"Accounts left alone: the relay listed an invalid DID, or the stream kept writing the account while the sweep asked the relay about it again and again (the stream's word is the newer)."`
	StatusesChanged int64      `json:"statuses_changed" doc:"Accounts whose status the sweep changed (hidden, listed again or deleted)."`
	AccountsRemoved int64      `json:"accounts_removed" doc:"Accounts the relay holds deleted that the sweep removed."`
	ChecksQueued    int64      `json:"checks_queued" doc:"verify_repo checks asked for (accounts re-learned from their PDS)."`
	ChecksGivenUp   int64      `json:"checks_given_up" doc:"Of its checks, those River gave up on (discarded once their attempts were spent, or cancelled), counted when the sweep finished: their accounts keep what the index had. River UI keeps them, with their errors, for a week."`
	LastError       string     `json:"last_error,omitempty" doc:"Why the last page failed (the job retries with backoff)."`
	StartedAt       time.Time  `json:"started_at"`
	WalkedAt        *time.Time `json:"walked_at,omitempty" doc:"When the last page was applied; the sweep then asks the relay about each account the index holds that it did not list."`
	UnlistedAsked   int64      `json:"unlisted_asked" doc:"Accounts the index holds that the relay did not list (a relay lists its active accounts only), asked about (getRepoStatus)."`
	UnlistedAt      *time.Time `json:"unlisted_at,omitempty" doc:"When every such account had been asked about; the sweep then waits for its checks."`
	FinishedAt      *time.Time `json:"finished_at,omitempty" doc:"When its checks had all run or been given up (checks_given_up)."`
}

func sweepOf(r pgstore.AccountSweep) Sweep {
	return Sweep{ID: r.ID, Relay: r.Relay, Reason: r.Reason, GapID: r.GapID, RevsAfter: r.RevsAfter, Cursor: r.Cursor, Pages: r.Pages,
		Repos: r.Repos, Skipped: r.Skipped, StatusesChanged: r.StatusesChanged, AccountsRemoved: r.AccountsRemoved,
		ChecksQueued: r.ChecksQueued, ChecksGivenUp: r.ChecksGivenUp, LastError: r.LastError, StartedAt: r.StartedAt, WalkedAt: r.WalkedAt,
		UnlistedAsked: r.UnlistedAsked, UnlistedAt: r.UnlistedAt, FinishedAt: r.FinishedAt}
}

// StartSweep records a sweep of relay's account list (a ws:// or wss:// stream URL, or the
// relay's http(s) base) and enqueues it. revsAfter, when set, re-learns from their PDS the
// active accounts whose repo changed at or after it.
func (b *Backfill) StartSweep(ctx context.Context, relay string, revsAfter *time.Time) (Sweep, error) {
	if _, err := relayHTTPBase(relay); err != nil {
		return Sweep{}, err
	}
	var sw Sweep
	err := pgx.BeginFunc(ctx, b.Pool, func(tx pgx.Tx) error {
		var err error
		sw, err = b.startSweepTx(ctx, tx, relay, nil, revsAfter, SweepReasonOperator)
		return err
	})
	if err != nil {
		return Sweep{}, fmt.Errorf("start an account sweep: %w", err)
	}
	b.logger.InfoContext(ctx, "account sweep started", "sweep", sw.ID, "relay", relay, "revs_after", revsAfter)
	return sw, nil
}

// startSweepTx records a sweep (a gap's: the one it already has, if any) and enqueues it.
func (b *Backfill) startSweepTx(ctx context.Context, tx pgx.Tx, relay string, gapID *int64, revsAfter *time.Time, reason string) (Sweep, error) {
	id, err := queries.SweepInsert(ctx, tx, pgstore.SweepInsertParams{Relay: relay, GapID: gapID, RevsAfter: revsAfter, Reason: reason})
	if err != nil {
		return Sweep{}, err
	}
	if _, err := b.River.InsertTx(ctx, tx, AccountSweepArgs{SweepID: id}, nil); err != nil {
		return Sweep{}, fmt.Errorf("enqueue the sweep: %w", err)
	}
	r, err := queries.SweepGet(ctx, tx, id)
	if err != nil {
		return Sweep{}, err
	}
	return sweepOf(r), nil
}

// resumeSweeps enqueues the job of every unfinished sweep that has none live, and counts them.
func (b *Backfill) resumeSweeps(ctx context.Context) (int, error) {
	unfinished, err := queries.SweepsUnfinished(ctx, b.Pool)
	if err != nil {
		return 0, fmt.Errorf("list unfinished account sweeps: %w", err)
	}
	n := 0
	for _, sw := range unfinished {
		res, err := b.River.Insert(ctx, AccountSweepArgs{SweepID: sw.ID}, nil)
		if err != nil {
			return n, fmt.Errorf("enqueue account sweep %d: %w", sw.ID, err)
		}
		if !res.UniqueSkippedAsDuplicate {
			n++
		}
	}
	return n, nil
}

// Sweeps lists every unfinished sweep and the latest few, newest first.
func (b *Backfill) Sweeps(ctx context.Context) ([]Sweep, error) {
	rows, err := queries.SweepsRecent(ctx, b.Pool, recentSweeps)
	if err != nil {
		return nil, fmt.Errorf("list account sweeps: %w", err)
	}
	out := make([]Sweep, len(rows))
	for i, r := range rows {
		out[i] = sweepOf(r)
	}
	return out, nil
}
