// Package fakerelay is a synthetic atproto relay for tests, benchmarks and cmd/benchrelay's
// local firehose: it serves
// com.atproto.sync.subscribeRepos on loopback with real frames (indigo's event types,
// serialised as a relay serialises them, with sync-1.1 commits built by Account), replays
// from ?cursor=, and injects faults on demand: dropped connections, malformed frames, #info
// and error frames, an outage, a retention window. It also answers
// com.atproto.sync.listRepos and getRepoStatus from the accounts its events have named, as
// indigo's relay does (listrepos.go).
package fakerelay

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
)

// Relay is the fake relay. Its methods are safe for concurrent use.
type Relay struct {
	srv *httptest.Server

	mu      sync.Mutex
	frames  []frame // the retained log, seq ascending
	nextSeq int64
	changed chan struct{} // closed (and replaced) whenever frames or a connection's queue grow
	conns   map[*conn]struct{}
	down    bool
	cursors []string // the cursor parameter of every accepted connection, in order
	// fromStart: no cursor means the whole log, not the live tail.
	fromStart bool
	// accounts is what com.atproto.sync.listRepos answers from (listrepos.go).
	accounts accountTable
}

type frame struct {
	seq  int64
	data []byte
}

type conn struct {
	ws     *websocket.Conn
	inject [][]byte // frames to send now, outside the log (faults, #info)
	// closeAfter ends the connection once inject is sent (after an error frame).
	closeAfter bool
	gone       chan struct{}
	once       sync.Once
}

func (c *conn) kill() {
	c.once.Do(func() {
		close(c.gone)
		c.ws.UnderlyingConn().Close()
	})
}

// New starts a relay on loopback, closed when the test ends.
func New(t testing.TB) *Relay {
	r := Start()
	t.Cleanup(r.Close)
	return r
}

// Start starts a relay on loopback; the caller closes it.
func Start() *Relay {
	r := Unstarted()
	r.srv = httptest.NewServer(r)
	return r
}

// Unstarted returns a relay that the caller serves (ServeHTTP), on an address of its own:
// cmd/benchrelay's live stream. URL is a started relay's only.
func Unstarted() *Relay {
	return &Relay{nextSeq: 1, changed: make(chan struct{}), conns: map[*conn]struct{}{}}
}

// ServeHTTP serves subscribeRepos, listRepos and getRepoStatus.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.serve(w, req) }

// ReplayFromStart makes a connection without a cursor get the whole retained log (as a
// consumer catching up from the beginning would), instead of the live tail.
func (r *Relay) ReplayFromStart(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fromStart = on
}

// URL is the relay's ws:// base URL.
func (r *Relay) URL() string { return "ws" + strings.TrimPrefix(r.srv.URL, "http") }

// Close drops every connection and stops the server (a started relay's).
func (r *Relay) Close() {
	r.SetDown(true)
	if r.srv != nil {
		r.srv.Close()
	}
}

// Append adds an event to the log, giving it the next seq, and returns the seq.
func (r *Relay) Append(xev *events.XRPCStreamEvent) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.nextSeq
	switch {
	case xev.RepoCommit != nil:
		xev.RepoCommit.Seq = seq
	case xev.RepoSync != nil:
		xev.RepoSync.Seq = seq
	case xev.RepoIdentity != nil:
		xev.RepoIdentity.Seq = seq
	case xev.RepoAccount != nil:
		xev.RepoAccount.Seq = seq
	default:
		return 0, fmt.Errorf("fakerelay: only events with a seq go in the log")
	}
	data, err := serialize(xev)
	if err != nil {
		return 0, err
	}
	r.nextSeq++
	r.frames = append(r.frames, frame{seq: seq, data: data})
	r.accounts.track(xev)
	r.notifyLocked()
	return seq, nil
}

// Commit appends a #commit of ops to a's repository.
func (r *Relay) Commit(a *Account, ops ...Op) (int64, error) {
	evt, err := a.Commit(ops...)
	if err != nil {
		return 0, err
	}
	return r.Append(&events.XRPCStreamEvent{RepoCommit: evt})
}

// AccountStatus appends an #account event; status is ignored when active.
func (r *Relay) AccountStatus(did string, active bool, status string) (int64, error) {
	evt := &comatproto.SyncSubscribeRepos_Account{Did: did, Active: active, Time: syntax.DatetimeNow().String()}
	if !active && status != "" {
		evt.Status = &status
	}
	return r.Append(&events.XRPCStreamEvent{RepoAccount: evt})
}

// Identity appends an #identity event.
func (r *Relay) Identity(did string) (int64, error) {
	return r.Append(&events.XRPCStreamEvent{RepoIdentity: &comatproto.SyncSubscribeRepos_Identity{
		Did: did, Time: syntax.DatetimeNow().String(),
	}})
}

// LastSeq is the seq of the newest event in the log.
func (r *Relay) LastSeq() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nextSeq - 1
}

// Trim drops the events at or below seq, as a relay's retention window does: a consumer
// asking for an older cursor gets #info OutdatedCursor and the stream from the oldest left.
func (r *Relay) Trim(seq int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for i < len(r.frames) && r.frames[i].seq <= seq {
		i++
	}
	r.frames = r.frames[i:]
}

// Inject sends raw bytes as one binary frame to every open connection, outside the log:
// a corrupted frame on the wire is not replayed.
func (r *Relay) Inject(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.inject = append(c.inject, data)
	}
	r.notifyLocked()
}

// Info sends an #info frame to every open connection.
func (r *Relay) Info(name, message string) error {
	data, err := serialize(&events.XRPCStreamEvent{RepoInfo: &comatproto.SyncSubscribeRepos_Info{Name: name, Message: &message}})
	if err != nil {
		return err
	}
	r.Inject(data)
	return nil
}

// MalformedFrame is a binary frame whose header says #commit but whose body is not one.
func MalformedFrame() []byte {
	var buf bytes.Buffer
	h := events.EventHeader{Op: events.EvtKindMessage, MsgType: "#commit"}
	_ = h.MarshalCBOR(&buf)
	buf.Write([]byte{0xff, 0x00, 0x13, 0x37})
	return buf.Bytes()
}

// DropConnections closes every open connection abruptly (no close frame).
func (r *Relay) DropConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.kill()
	}
}

// SetDown makes the relay refuse connections (HTTP 503) and drops the open ones, or serve
// again.
func (r *Relay) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
	if down {
		for c := range r.conns {
			c.kill()
		}
	}
}

// Cursors returns the cursor parameter of every connection accepted so far ("" for none).
func (r *Relay) Cursors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.cursors...)
}

// Connections returns how many connections are open.
func (r *Relay) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *Relay) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func serialize(xev *events.XRPCStreamEvent) ([]byte, error) {
	var buf bytes.Buffer
	if err := xev.Serialize(&buf); err != nil {
		return nil, fmt.Errorf("fakerelay: serialise event: %w", err)
	}
	return buf.Bytes(), nil
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1 << 10, WriteBufferSize: 64 << 10}

func (r *Relay) serve(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/xrpc/com.atproto.sync.listRepos":
		r.listRepos(w, req)
		return
	case "/xrpc/com.atproto.sync.getRepoStatus":
		r.getRepoStatus(w, req)
		return
	}
	if req.URL.Path != "/xrpc/com.atproto.sync.subscribeRepos" {
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	if down {
		http.Error(w, "relay down", http.StatusServiceUnavailable)
		return
	}
	ws, err := upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, gone: make(chan struct{})}
	defer c.kill()
	cursorParam := req.URL.Query().Get("cursor")

	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		return
	}
	r.conns[c] = struct{}{}
	r.cursors = append(r.cursors, cursorParam)
	// sentSeq is the seq of the last event sent: by seq, not index, since Trim shifts the log.
	sentSeq := r.nextSeq - 1 // no cursor: the live tail
	if cursorParam != "" || r.fromStart {
		sentSeq, _ = strconv.ParseInt(cursorParam, 10, 64)
		if cursorParam != "" && len(r.frames) > 0 && sentSeq < r.frames[0].seq-1 {
			data, _ := serialize(&events.XRPCStreamEvent{RepoInfo: &comatproto.SyncSubscribeRepos_Info{Name: "OutdatedCursor"}})
			c.inject = append(c.inject, data)
		}
		if cursorParam != "" && sentSeq > r.nextSeq-1 {
			// Past the newest event, as after a relay's sequence was reset: indigo's relay
			// answers with a FutureCursor error frame and closes.
			c.inject = append(c.inject, errorFrame("FutureCursor", "cursor in the future"))
			c.closeAfter = true
		}
	}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()

	// Reading answers the consumer's pings and notices its close.
	go func() {
		for {
			if _, _, err := ws.NextReader(); err != nil {
				c.kill()
				return
			}
		}
	}()

	for {
		r.mu.Lock()
		inject := c.inject
		c.inject = nil
		i := sort.Search(len(r.frames), func(i int) bool { return r.frames[i].seq > sentSeq })
		batch := r.frames[i:]
		closeNow := c.closeAfter
		changed := r.changed
		r.mu.Unlock()
		for _, data := range inject {
			if ws.WriteMessage(websocket.BinaryMessage, data) != nil {
				return
			}
		}
		if closeNow {
			return
		}
		for _, f := range batch {
			if ws.WriteMessage(websocket.BinaryMessage, f.data) != nil {
				return
			}
			sentSeq = f.seq
		}
		if len(inject) > 0 || len(batch) > 0 {
			continue
		}
		select {
		case <-changed:
		case <-c.gone:
			return
		}
	}
}

// ErrorFrame sends an error frame (e.g. FutureCursor) to every open connection and then
// closes them, as a relay does.
func (r *Relay) ErrorFrame(name, message string) error {
	data := errorFrame(name, message)
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.inject = append(c.inject, data)
		c.closeAfter = true
	}
	r.notifyLocked()
	return nil
}

// errorFrame is an error frame as a relay sends it: a header with op -1, then the error.
func errorFrame(name, message string) []byte {
	var buf bytes.Buffer
	h := events.EventHeader{Op: events.EvtKindErrorFrame}
	if err := h.MarshalCBOR(&buf); err != nil {
		panic(err) // writing to a bytes.Buffer does not fail
	}
	if err := (&events.ErrorFrame{Error: name, Message: message}).MarshalCBOR(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
