package testrelay

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
)

// Mirror starts another relay serving the same collections with the same cursors: what two
// replicas of one collectiondir behind different names look like, so a client can move from
// one to the other and keep its cursor. Each keeps its own request counts, starts and faults;
// DIDs appended to one after the mirror was made are not seen by the other.
func (r *Relay) Mirror() *Relay {
	r.mu.Lock()
	m := &Relay{
		idBase: r.idBase,
		ids:    maps.Clone(r.ids),
		dids:   make(map[string][]string, len(r.dids)),
		starts: map[string][]int{},
	}
	for c, d := range r.dids {
		m.dids[c] = slices.Clone(d)
	}
	r.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /xrpc/com.atproto.sync.listReposByCollection", m.listRepos)
	m.Server = httptest.NewServer(mux)
	return m
}
