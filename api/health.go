package api

import (
	"context"
	"net/http"
	"time"

	"github.com/colindex/colindex/jobs"
)

// /_health says whether the parts answer (Postgres, the index) and whether this colindex is
// ready to take readers: its backfill complete and its stream caught up. A replica
// (docs/SCALING.md) answers 503 until it is ready, so a load balancer sends it no readers
// before its copy is complete and current; a standalone colindex answers 200 while its parts
// answer, whatever its backfill (operators start that themselves, and tools wait on 200 to
// start it).

type healthOutput struct {
	Status   string `json:"status" enum:"ok,starting,error" doc:"ok; starting while a replica is not ready (503); error when a part does not answer (503)."`
	Postgres string `json:"postgres" enum:"ok,unreachable"`
	Index    string `json:"index" enum:"ok,unreadable"`
	// Ready is what a load balancer should look at.
	Ready     bool            `json:"ready" doc:"Both parts answer, the backfill is complete and, when a firehose is configured, this process follows it and has caught up."`
	Backfill  string          `json:"backfill" enum:"none,running,stopped,complete,unknown" doc:"none: nothing started; running: jobs are live; stopped: collections are incomplete and nothing pages them; complete: every collection paged to its end."`
	Firehose  *healthFirehose `json:"firehose,omitempty" doc:"The live stream, when one is configured."`
	ReplicaOf string          `json:"replica_of,omitempty" doc:"The colindex this one copies (replica mode), when it is a replica."`
}

type healthFirehose struct {
	URL       string `json:"url" doc:"The relay followed (normalised base URL)."`
	Following bool   `json:"following" doc:"This process follows the stream (one per database does)."`
	Connected bool   `json:"connected"`
	Cursor    int64  `json:"cursor" doc:"The last durable seq (-1: none yet). A replica of this colindex starts its own stream here."`
	CaughtUp  bool   `json:"caught_up" doc:"Connected, with a durable cursor, and not behind (no backlog, events less than 10 s old)."`
	GapsOpen  int64  `json:"gaps_open" doc:"Open gaps in the stream (GET /admin/firehose lists them): until their refresh completes the index may miss adds from before the cursor, so a replica does not start its stream from this cursor. -1 when they could not be counted."`
}

// health answers 200 when Postgres and the index both answer (and, for a replica, when it
// is ready), 503 naming what failed or that the replica is starting.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := healthOutput{Status: "ok", Postgres: "ok", Index: "ok", Backfill: "unknown", ReplicaOf: s.ReplicaOf}
	status := http.StatusOK
	// The endpoint is public: it names what is wrong, and the log has the details (which
	// can carry host names and users).
	if err := s.Pool.Ping(ctx); err != nil {
		s.Logger.WarnContext(ctx, "health: postgres", "error", err)
		out.Status, out.Postgres, status = "error", "unreachable", http.StatusServiceUnavailable
	}
	if err := s.Index.Ping(); err != nil {
		s.Logger.WarnContext(ctx, "health: index", "error", err)
		out.Status, out.Index, status = "error", "unreadable", http.StatusServiceUnavailable
	}
	if s.Backfill != nil && out.Postgres == "ok" {
		if st, err := s.Backfill.Readiness(ctx); err != nil {
			s.Logger.WarnContext(ctx, "health: backfill state", "error", err)
		} else {
			out.Backfill = string(st)
		}
	}
	streamReady := true
	if s.Firehose != nil {
		st := s.Firehose.Status()
		out.Firehose = &healthFirehose{URL: st.URL, Following: st.Following, Connected: st.Connected,
			Cursor: st.Cursor, CaughtUp: s.Firehose.CaughtUp()}
		if s.Backfill != nil && out.Postgres == "ok" {
			n, err := s.Backfill.OpenGaps(ctx)
			if err != nil {
				s.Logger.WarnContext(ctx, "health: stream gaps", "error", err)
				n = -1 // unknown: a replica must not take it for none
			}
			out.Firehose.GapsOpen = n
		}
		streamReady = st.Following && out.Firehose.CaughtUp
	}
	out.Ready = out.Status == "ok" && out.Backfill == string(jobs.BackfillComplete) && streamReady
	if s.ReplicaOf != "" && out.Status == "ok" && !out.Ready {
		out.Status, status = "starting", http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, out)
}
