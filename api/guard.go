package api

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed admin logins are limited per client address: a client gets a burst of wrong
// passwords (DefaultFailedLogins), then one more every failedEvery. While it has none left,
// its wrong passwords are answered 429 with Retry-After. Requests without credentials spend
// nothing, and the right password is always served (see Server.admit for why).
const (
	// DefaultFailedLogins is a client's allowance of wrong passwords before it is slowed.
	DefaultFailedLogins = 10
	failedEvery         = 6 * time.Second
	// guardEntries bounds the table; entries of clients that have their full allowance back
	// carry no state and are dropped when it fills.
	guardEntries = 10000
)

type loginGuard struct {
	burst   int
	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newLoginGuard(burst int) *loginGuard {
	return &loginGuard{burst: burst, clients: map[string]*rate.Limiter{}}
}

// clientKey is the client's address without its port; for IPv6, its /64, since one client
// can hold a whole /64. colindex trusts no forwarding header: behind a proxy, every client
// shares the proxy's allowance, which errs on the safe side.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if addr.Is4() || addr.Is4In6() {
		return addr.Unmap().String()
	}
	prefix, _ := addr.Prefix(64)
	return prefix.String()
}

// blocked reports whether a client has spent its allowance, and how long until it may try again.
func (g *loginGuard) blocked(client string) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.clients[client]
	if !ok {
		return 0, false
	}
	tokens := l.Tokens()
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) * float64(failedEvery)), true
}

// failed spends one of a client's allowed failures.
func (g *loginGuard) failed(client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.clients[client]
	if !ok {
		if len(g.clients) >= guardEntries {
			g.prune()
		}
		l = rate.NewLimiter(rate.Every(failedEvery), g.burst)
		g.clients[client] = l
	}
	l.Allow()
}

// prune drops the clients that have their full allowance back (they carry no state); if the
// table is still full, some others go too (a flood of addresses cannot grow it without bound).
func (g *loginGuard) prune() {
	for k, l := range g.clients {
		if l.Tokens() >= float64(g.burst) {
			delete(g.clients, k)
		}
	}
	for k := range g.clients {
		if len(g.clients) < guardEntries*9/10 {
			break
		}
		delete(g.clients, k)
	}
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int(d.Round(time.Second)/time.Second) + 1)
}

// tooManyFailures answers a blocked client.
func tooManyFailures(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	http.Error(w, "too many failed logins; try again later", http.StatusTooManyRequests)
}
