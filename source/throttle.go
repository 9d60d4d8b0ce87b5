package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

const (
	// maxInlineWait is the longest a request waits for a source's hold inside a page job;
	// longer waits are handed back as a RateLimitedError so the job can snooze instead of
	// holding a worker and its lease.
	maxInlineWait = 2 * time.Second
	// maxQueueWait is the longest a request queues for the rate cap's next token before it
	// steps aside (RateLimitedError) for the deeper chains that keep the cap busy.
	maxQueueWait = 5 * time.Second
	// queueRetry is how long a request that stepped aside waits before queueing again.
	queueRetry = time.Second
	// defaultBackoff is used for a 429 that names no time to wait.
	defaultBackoff = 5 * time.Second
	// maxBackoff caps what a source can ask for.
	maxBackoff = 15 * time.Minute
)

// RateLimitedError says paging of a source must wait: the source asked for it (429,
// RateLimit-*), or the rate cap is busy with higher-priority requests. It is not a failure:
// the caller should try again after Wait.
type RateLimitedError struct {
	Source string
	Wait   time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("paging %s must wait %s", e.Source, e.Wait.Round(time.Millisecond))
}

// throttle paces the requests to one source: the operator's rate cap (a token bucket shared
// by every worker), lowered to the source's own advertised policy when that is stricter,
// and a hold on every request until the time a 429 or an exhausted RateLimit-Remaining names.
type throttle struct {
	name       string
	limiter    *rate.Limiter
	queue      *tokenQueue
	configured rate.Limit
	// throttled counts the source's 429s (colindex_source_throttled_total).
	throttled prometheus.Counter

	mu    sync.Mutex
	until time.Time
}

func newThrottle(name string, rps float64, throttled prometheus.Counter) *throttle {
	limit := rate.Inf
	if rps > 0 {
		limit = rate.Limit(rps)
	}
	l := rate.NewLimiter(limit, 1)
	return &throttle{name: name, limiter: l, queue: newTokenQueue(l), configured: limit, throttled: throttled}
}

// wait blocks until a request may be sent (higher priority first), or returns a
// RateLimitedError when the source's hold, or the queue for the cap, lasts too long.
func (t *throttle) wait(ctx context.Context, priority int64) error {
	if err := t.holdOff(ctx); err != nil {
		return err
	}
	if err := t.queue.wait(ctx, priority, maxQueueWait); errors.Is(err, errQueueTimeout) {
		return &RateLimitedError{Source: t.name, Wait: queueRetry}
	} else if err != nil {
		return err
	}
	// A 429 may have come in while this request queued: honour it before sending.
	return t.holdOff(ctx)
}

// holdOff waits out the source's hold, if any, or hands it back when it is long.
func (t *throttle) holdOff(ctx context.Context) error {
	t.mu.Lock()
	hold := time.Until(t.until)
	t.mu.Unlock()
	if hold <= 0 {
		return nil
	}
	if hold > maxInlineWait {
		return &RateLimitedError{Source: t.name, Wait: hold}
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// observe reads a response's rate-limit headers and returns the hold they ask for: after a
// 429, or once RateLimit-Remaining reaches 0, until the time the source names.
func (t *throttle) observe(resp *http.Response, now time.Time) time.Duration {
	h := resp.Header
	if perSec, ok := policyRate(h); ok {
		limit := min(t.configured, rate.Limit(perSec))
		if t.limiter.Limit() != limit {
			t.limiter.SetLimit(limit)
		}
	}
	var hold time.Duration
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		hold = defaultBackoff
		if d, ok := retryAfter(h, now); ok {
			hold = d
		}
		t.throttled.Inc()
	case strings.TrimSpace(h.Get("RateLimit-Remaining")) == "0":
		hold, _ = resetDelay(h.Get("RateLimit-Reset"), now)
	}
	if hold <= 0 {
		return 0
	}
	hold = min(hold, maxBackoff)
	t.mu.Lock()
	if until := now.Add(hold); until.After(t.until) {
		t.until = until
	}
	t.mu.Unlock()
	return hold
}

// retryAfter reads Retry-After (seconds or an HTTP date), then RateLimit-Reset.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if at, err := http.ParseTime(v); err == nil {
			return max(at.Sub(now), 0), true
		}
	}
	return resetDelay(h.Get("RateLimit-Reset"), now)
}

// resetDelay reads RateLimit-Reset: atproto services send a unix time in seconds; the IETF
// draft sends seconds to wait. A value too large to be a delay is read as a unix time.
func resetDelay(v string, now time.Time) (time.Duration, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	if n > 1_000_000_000 {
		return max(time.Unix(n, 0).Sub(now), 0), true
	}
	return time.Duration(n) * time.Second, true
}

// policyRate reads a "RateLimit-Policy: 3000;w=300" header as requests per second.
func policyRate(h http.Header) (float64, bool) {
	v := h.Get("RateLimit-Policy")
	if v == "" {
		return 0, false
	}
	first, _, _ := strings.Cut(v, ",")
	parts := strings.Split(first, ";")
	limit, err := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
	if err != nil || limit <= 0 {
		return 0, false
	}
	for _, p := range parts[1:] {
		if w, ok := strings.CutPrefix(strings.TrimSpace(p), "w="); ok {
			window, err := strconv.ParseFloat(w, 64)
			if err == nil && window > 0 {
				return limit / window, true
			}
		}
	}
	return 0, false
}
