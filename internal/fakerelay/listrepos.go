package fakerelay

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
)

// accountTable is the relay's view of every account its log has named, in the order it first
// saw them (indigo's relay pages listRepos by its account ID, not by DID): the rev and commit
// of its newest #commit or #sync, and the status of its newest #account. Trimming the log
// keeps it, as a relay's database outlives its retention window.
type accountTable struct {
	order []string
	byDID map[string]*comatproto.SyncListRepos_Repo
	// failNext makes that many listRepos requests answer 500 (FailListRepos).
	failNext int
	// pageMax, when set, caps a page below the limit asked (ListReposPageMax).
	pageMax int
	// delay is how long each listRepos answer waits (ListReposDelay); statusDelay each
	// getRepoStatus answer (RepoStatusDelay).
	delay, statusDelay time.Duration
	// held, when set, holds every listRepos answer until it is closed (HoldListRepos).
	held chan struct{}
	// failStatus makes that many getRepoStatus requests answer 500 (FailRepoStatus), and
	// limitStatus that many 429 (RateLimitRepoStatus).
	failStatus, limitStatus int
}

func (t *accountTable) get(did string) *comatproto.SyncListRepos_Repo {
	if t.byDID == nil {
		t.byDID = map[string]*comatproto.SyncListRepos_Repo{}
	}
	a, ok := t.byDID[did]
	if !ok {
		active := true
		a = &comatproto.SyncListRepos_Repo{Did: did, Active: &active}
		t.byDID[did] = a
		t.order = append(t.order, did)
	}
	return a
}

// track updates the table with an event just logged. Callers hold r.mu.
func (t *accountTable) track(xev *events.XRPCStreamEvent) {
	switch {
	case xev.RepoCommit != nil:
		a := t.get(xev.RepoCommit.Repo)
		a.Rev, a.Head = xev.RepoCommit.Rev, xev.RepoCommit.Commit.String()
	case xev.RepoSync != nil:
		a := t.get(xev.RepoSync.Did)
		a.Rev = xev.RepoSync.Rev
	case xev.RepoAccount != nil:
		a := t.get(xev.RepoAccount.Did)
		active := xev.RepoAccount.Active
		a.Active, a.Status = &active, nil
		if !active && xev.RepoAccount.Status != nil {
			status := *xev.RepoAccount.Status
			a.Status = &status
		}
	}
}

// HoldRepo records that the relay holds did's repository at rev, active, as after a crawl,
// without an event in the log: listRepos lists it.
func (r *Relay) HoldRepo(did, rev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.accounts.get(did)
	a.Rev = rev
}

// FailListRepos makes the next n listRepos requests answer HTTP 500.
func (r *Relay) FailListRepos(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts.failNext = n
}

// ListReposPageMax makes listRepos answer at most n accounts a page, whatever the limit
// asked (0: the limit), as a relay may.
func (r *Relay) ListReposPageMax(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts.pageMax = n
}

// ListReposDelay makes each listRepos answer wait d, as a relay that reads its database does.
func (r *Relay) ListReposDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts.delay = d
}

// HoldListRepos holds every listRepos answer until release is called.
func (r *Relay) HoldListRepos() (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held := make(chan struct{})
	r.accounts.held = held
	return sync.OnceFunc(func() { close(held) })
}

// FailRepoStatus makes the next n getRepoStatus requests answer HTTP 500.
func (r *Relay) FailRepoStatus(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts.failStatus = n
}

// RateLimitRepoStatus makes the next n getRepoStatus requests answer HTTP 429 with
// Retry-After: 1, as a relay's rate limit does.
func (r *Relay) RateLimitRepoStatus(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts.limitStatus = n
}

// RepoStatusDelay makes each getRepoStatus answer wait d: a relay across a network.
func (r *Relay) RepoStatusDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accounts.statusDelay = d
}

// listRepos answers com.atproto.sync.listRepos as indigo's relay does: limit 1..1000
// (default 500), the cursor an opaque account ID, only the accounts that are active and whose
// repository it holds (a commit or a #sync named its rev), and a cursor only when the page is
// full.
func (r *Relay) listRepos(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	limit := 500
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeXRPCError(w, http.StatusBadRequest, "BadRequest", "limit parameter invalid: "+s)
			return
		}
		limit = n
	}
	from := 0
	if s := q.Get("cursor"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeXRPCError(w, http.StatusBadRequest, "BadRequest", "cursor parameter invalid: "+s)
			return
		}
		from = n
	}
	r.mu.Lock()
	delay, held := r.accounts.delay, r.accounts.held
	r.mu.Unlock()
	if held != nil {
		select {
		case <-held:
		case <-req.Context().Done():
			return
		}
	}
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
		return
	}
	r.mu.Lock()
	if r.accounts.failNext > 0 {
		r.accounts.failNext--
		r.mu.Unlock()
		writeXRPCError(w, http.StatusInternalServerError, "DatabaseError", "failed to list accounts (repos)")
		return
	}
	if r.accounts.pageMax > 0 {
		limit = min(limit, r.accounts.pageMax)
	}
	out := comatproto.SyncListRepos_Output{Repos: []*comatproto.SyncListRepos_Repo{}}
	for i := from; i < len(r.accounts.order) && len(out.Repos) < limit; i++ {
		a := *r.accounts.byDID[r.accounts.order[i]]
		if (a.Active != nil && !*a.Active) || a.Rev == "" {
			continue
		}
		out.Repos = append(out.Repos, &a)
		if len(out.Repos) == limit {
			next := strconv.Itoa(i + 1)
			out.Cursor = &next
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// getRepoStatus answers com.atproto.sync.getRepoStatus as indigo's relay does: the account's
// active and status, its rev, or 404 RepoNotFound for an account it never saw.
func (r *Relay) getRepoStatus(w http.ResponseWriter, req *http.Request) {
	did := req.URL.Query().Get("did")
	r.mu.Lock()
	delay := r.accounts.statusDelay
	r.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-req.Context().Done():
		return
	}
	r.mu.Lock()
	if r.accounts.failStatus > 0 {
		r.accounts.failStatus--
		r.mu.Unlock()
		writeXRPCError(w, http.StatusInternalServerError, "InternalServerError", "status unavailable")
		return
	}
	if r.accounts.limitStatus > 0 {
		r.accounts.limitStatus--
		r.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		writeXRPCError(w, http.StatusTooManyRequests, "RateLimitExceeded", "rate limit exceeded")
		return
	}
	a, ok := r.accounts.byDID[did]
	var out comatproto.SyncGetRepoStatus_Output
	if ok {
		out = comatproto.SyncGetRepoStatus_Output{Did: did, Active: a.Active == nil || *a.Active, Status: a.Status}
		if a.Rev != "" {
			rev := a.Rev
			out.Rev = &rev
		}
	}
	r.mu.Unlock()
	if !ok {
		writeXRPCError(w, http.StatusNotFound, "RepoNotFound", "account not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeXRPCError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": name, "message": msg})
}
