package pace

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Upstreams whose rate-limit headers the Transport understands.
const (
	Anthropic = "anthropic"
	GitHub    = "github"
)

// DefaultKey is the limiter key of requests whose context carries none.
const DefaultKey = "default"

// Breaker defaults, used when the Options leave them zero.
const (
	DefaultFailureThreshold = 5
	DefaultOpenFor          = 10 * time.Second
	DefaultMaxOpenFor       = 2 * time.Minute
)

type keyContext struct{}

// WithKey returns ctx carrying the limiter key for requests made with it
// (e.g. "sonnet" for an Anthropic model family, "token" or
// "installation-42" for a GitHub credential). Requests without a key use
// DefaultKey. Each key has its own learned limits, write window,
// concurrency slots and circuit breaker, because upstreams meter each
// credential (and Anthropic each model family) separately.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyContext{}, key)
}

func keyFrom(ctx context.Context) string {
	if k, ok := ctx.Value(keyContext{}).(string); ok && k != "" {
		return k
	}
	return DefaultKey
}

// Options configures a Transport. The zero value paces nothing until it
// has learned limits from response headers, and opens the breaker after
// DefaultFailureThreshold consecutive failures.
type Options struct {
	// Upstream is Anthropic or GitHub: it selects which headers are
	// learned, and is the upstream label of the metrics. Any other value
	// learns only retry-after on 429.
	Upstream string

	// Write limits (GitHub's secondary limits), per key, applied to POST,
	// PATCH, PUT and DELETE. They hold exactly: a write is recorded in the
	// window before it is sent, under the same lock that checked it.
	WritesPerMinute int           // at most this many writes started in any 60 s; 0 = no limit
	WritesPerHour   int           // at most this many writes started in any 3600 s; 0 = no limit
	WriteSpacing    time.Duration // least time between the starts of two writes; 0 = none
	// Shared, when set, also keeps the write limits in a window outside
	// the process, so that every instance sharing it paces its writes
	// with the others: the limits then hold for the fleet.
	Shared SharedWindow

	// SnoozeAfter: a request that would wait longer than this for a
	// learned limit, a pause or the write window is not held: RoundTrip
	// returns a *WaitError saying how long instead, so that the caller's
	// job can be snoozed and its worker freed. 0 waits however long.
	SnoozeAfter time.Duration

	// MaxConcurrent caps the requests in flight per key (a request is in
	// flight until its response body is closed or read to the end);
	// 0 = unlimited.
	MaxConcurrent int

	// FailureThreshold consecutive failures (transport errors, 500, 502,
	// 503, 504, 529) open the key's breaker for OpenFor; each failed probe
	// doubles the period up to MaxOpenFor.
	FailureThreshold int
	OpenFor          time.Duration
	MaxOpenFor       time.Duration

	// Now and Sleep are the clock; tests inject a fake one. Sleep must
	// return early, with ctx.Err(), when ctx ends.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	// Registerer receives the Transport's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// SharedWindow is a write window several processes share. TakeWriteSlot
// finds the earliest start at or after now, within the limits, for a
// write under key, and reserves it when it is no later than now+within
// (within 0: always); it returns the start and whether it was reserved.
// The caller waits until a reserved start.
//
// WriteSlots lists the starts reserved under key from an hour before now
// on, oldest first: the writes the whole fleet made and is about to make.
type SharedWindow interface {
	TakeWriteSlot(ctx context.Context, key string, now time.Time, limits WriteLimits, within time.Duration) (time.Time, bool, error)
	WriteSlots(ctx context.Context, key string, now time.Time) ([]time.Time, error)
}

// WriteLimits are the write window's limits.
type WriteLimits struct {
	PerMinute, PerHour int
	Spacing            time.Duration
}

// Transport is an http.RoundTripper that paces requests to one upstream
// by what the upstream's headers say, and stops calling it while it is
// failing. It is safe for concurrent use.
type Transport struct {
	next    http.RoundTripper
	opts    Options
	metrics *metrics

	mu   sync.Mutex
	keys map[string]*keyState
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport that sends through next
// (http.DefaultTransport when nil). It panics if opts.Registerer already
// holds the metrics of a Transport for the same upstream.
func NewTransport(next http.RoundTripper, opts Options) *Transport {
	if next == nil {
		next = http.DefaultTransport
	}
	if opts.FailureThreshold <= 0 {
		opts.FailureThreshold = DefaultFailureThreshold
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = DefaultOpenFor
	}
	if opts.MaxOpenFor <= 0 {
		opts.MaxOpenFor = DefaultMaxOpenFor
	}
	opts.MaxOpenFor = max(opts.MaxOpenFor, opts.OpenFor)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	t := &Transport{next: next, opts: opts, keys: make(map[string]*keyState)}
	if opts.Registerer != nil {
		t.metrics = newMetrics(t, opts.Registerer)
	}
	return t
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// OpenError is returned by RoundTrip, without calling the upstream, while
// the key's circuit breaker is open.
type OpenError struct {
	Upstream, Key string
	// Failures is the number of consecutive failures so far.
	Failures int
	// RetryAfter is how long until the breaker lets a probe through
	// (always > 0).
	RetryAfter time.Duration
}

// Error says which upstream and key are cut off and for how long.
func (e *OpenError) Error() string {
	return fmt.Sprintf("%s (%s): circuit open after %d consecutive failures; retry in %s",
		e.Upstream, e.Key, e.Failures, roundUp(e.RetryAfter))
}

// Temporary reports true: the breaker closes again by itself.
func (e *OpenError) Temporary() bool { return true }

// RetryAfterDuration is how long the caller should wait before retrying.
func (e *OpenError) RetryAfterDuration() time.Duration { return e.RetryAfter }

// WaitError is returned by RoundTrip, without calling the upstream, when
// the request would wait longer than Options.SnoozeAfter. It is not a
// failure: the caller tries again after RetryAfter.
type WaitError struct {
	Upstream, Key string
	What          string // what the request waits for
	RetryAfter    time.Duration
}

// Error says what the request waits for and how long.
func (e *WaitError) Error() string {
	return fmt.Sprintf("%s (%s): waiting %s for %s", e.Upstream, e.Key, roundUp(e.RetryAfter), e.What)
}

// Temporary reports true: the wait ends by itself.
func (e *WaitError) Temporary() bool { return true }

// RetryAfterDuration is how long the caller should wait before retrying.
func (e *WaitError) RetryAfterDuration() time.Duration { return max(e.RetryAfter, time.Second) }

// roundUp rounds d up to whole seconds, or milliseconds below a second,
// so messages read "8s" rather than "7.999983s".
func roundUp(d time.Duration) time.Duration {
	unit := time.Second
	if d < time.Second {
		unit = time.Millisecond
	}
	if r := d % unit; r != 0 {
		d += unit - r
	}
	return d
}

// State is a snapshot of one key, for the admin API and tests.
type State struct {
	Key                 string
	Buckets             []Bucket // sorted by Name
	CircuitOpen         bool     // open or half-open
	OpenUntil           time.Time
	ConsecutiveFailures int
}

// Bucket is the current estimate of one limit of a key. Name is
// "requests", "tokens", "input-tokens" or "output-tokens" for Anthropic;
// GitHub's x-ratelimit-resource (e.g. "core") for GitHub; "writes-minute"
// and "writes-hour" for the write window. Reset is when the bucket is full
// again (zero when unknown).
type Bucket struct {
	Name             string
	Limit, Remaining int64
	Reset            time.Time
}

// States returns a snapshot of every key used so far, sorted by key.
func (t *Transport) States() []State {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	states := make([]State, 0, len(t.keys))
	for _, ks := range t.keys {
		states = append(states, ks.state(now, &t.opts))
	}
	slices.SortFunc(states, func(a, b State) int { return strings.Compare(a.Key, b.Key) })
	return states
}

// RoundTrip sends req once the key's breaker, concurrency slots, learned
// rate limits and write window allow it, and learns from the response.
// It does not read or buffer the request body.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key := keyFrom(ctx)
	start := t.opts.Now()

	t.mu.Lock()
	ks := t.key(key)
	probe, err := t.gate(ks, false, start)
	t.mu.Unlock()
	if err != nil {
		closeBody(req)
		return nil, err
	}

	if ks.sem != nil {
		select {
		case ks.sem <- struct{}{}:
		case <-ctx.Done():
			t.abandon(ks, probe)
			closeBody(req)
			return nil, fmt.Errorf("%s (%s): wait for a concurrency slot: %w", t.opts.Upstream, key, ctx.Err())
		}
	}
	if err := t.sharedSlot(ctx, key, req); err != nil {
		t.abandon(ks, probe)
		ks.release()
		closeBody(req)
		return nil, err
	}
	tk, err := t.admit(ctx, ks, req, probe) // gives up the probe on errors
	if err != nil {
		ks.release()
		closeBody(req)
		return nil, err
	}
	t.metrics.observeWait(tk.start.Sub(start))

	resp, err := t.next.RoundTrip(req)
	t.finish(ks, tk, ctx, resp, err)

	switch {
	case ks.sem == nil:
	case err != nil || resp == nil || resp.Body == nil:
		ks.release()
	default:
		resp.Body = &releaseBody{ReadCloser: resp.Body, release: ks.release}
	}
	return resp, err
}

// sharedSlot waits for the fleet's write window when there is one: the
// slot is reserved first, then slept until.
func (t *Transport) sharedSlot(ctx context.Context, key string, req *http.Request) error {
	o := &t.opts
	if o.Shared == nil || !isWrite(req.Method) || (o.WritesPerMinute <= 0 && o.WritesPerHour <= 0 && o.WriteSpacing <= 0) {
		return nil
	}
	now := o.Now()
	limits := WriteLimits{PerMinute: o.WritesPerMinute, PerHour: o.WritesPerHour, Spacing: o.WriteSpacing}
	at, taken, err := o.Shared.TakeWriteSlot(ctx, key, now, limits, o.SnoozeAfter)
	if err != nil {
		return fmt.Errorf("%s (%s): shared write window: %w", o.Upstream, key, err)
	}
	if !taken {
		return &WaitError{Upstream: o.Upstream, Key: key, What: "the shared write window", RetryAfter: at.Sub(now)}
	}
	if d := at.Sub(now); d > 0 {
		if err := o.Sleep(ctx, d); err != nil {
			return fmt.Errorf("%s (%s): wait for the shared write window: %w", o.Upstream, key, err)
		}
	}
	return nil
}

// key returns the state of key, creating it. t.mu must be held.
func (t *Transport) key(key string) *keyState {
	ks := t.keys[key]
	if ks == nil {
		ks = &keyState{
			name:     key,
			buckets:  make(map[string]*bucket),
			inflight: make(map[uint64]struct{}),
			waiters:  make(map[uint64]context.CancelFunc),
			claims:   make(map[string]*waiter),
			finish:   make(map[string]int64),
			period:   t.opts.OpenFor,
		}
		if t.opts.MaxConcurrent > 0 {
			ks.sem = make(chan struct{}, t.opts.MaxConcurrent)
		}
		t.keys[key] = ks
	}
	return ks
}

// gate applies the breaker: nil while it is closed; while it is open, an
// *OpenError, except for the one request it lets through as a probe once
// the open period is over. t.mu must be held.
func (t *Transport) gate(ks *keyState, probe bool, now time.Time) (bool, error) {
	if !ks.open || probe {
		return probe, nil
	}
	if !now.Before(ks.openUntil) && !ks.probing {
		ks.probing = true
		return true, nil
	}
	retry := ks.openUntil.Sub(now)
	if retry <= 0 {
		// A probe is in flight; its answer decides. Ask again shortly.
		retry = time.Second
	}
	return false, &OpenError{Upstream: t.opts.Upstream, Key: ks.name, Failures: ks.failures, RetryAfter: retry}
}

// abandon gives up the probe of a request that was not sent, so that the
// next request probes instead.
func (t *Transport) abandon(ks *keyState, probe bool) {
	if !probe {
		return
	}
	t.mu.Lock()
	ks.probing = false
	t.mu.Unlock()
}

// admit waits until the key's pause, learned limits and write window let
// req start, and records the start. It re-checks the breaker each time it
// wakes, so requests that queued before the breaker opened do not hit a
// failing upstream.
func (t *Transport) admit(ctx context.Context, ks *keyState, req *http.Request, probe bool) (*ticket, error) {
	write := isWrite(req.Method)
	resource := t.resource(req)
	var waiter uint64
	for {
		t.mu.Lock()
		delete(ks.waiters, waiter)
		now := t.opts.Now()
		var err error
		probe, err = t.gate(ks, probe, now)
		if err != nil {
			t.mu.Unlock()
			return nil, err
		}
		d, long := ks.wait(now, write, resource, &t.opts)
		if t.opts.SnoozeAfter > 0 && long > t.opts.SnoozeAfter {
			if probe {
				ks.probing = false
			}
			t.mu.Unlock()
			return nil, &WaitError{Upstream: t.opts.Upstream, Key: ks.name, What: ks.waitingFor(now, write, &t.opts), RetryAfter: long}
		}
		if d <= 0 {
			tk := ks.begin(now, write, resource, probe, &t.opts)
			if write {
				useGrant(ctx, ks)
			}
			t.mu.Unlock()
			return tk, nil
		}
		// Sleep until d is over or an answer changes what the key knows
		// (a wait computed from a pessimistic estimate can be far too long).
		wctx, wake := context.WithCancel(ctx)
		ks.lastWaiter++
		waiter = ks.lastWaiter
		ks.waiters[waiter] = wake
		t.mu.Unlock()

		err = t.opts.Sleep(wctx, d)
		wake()
		if ctx.Err() == nil && (err == nil || wctx.Err() != nil) {
			continue
		}
		t.mu.Lock()
		delete(ks.waiters, waiter)
		if probe {
			// gate may have made this request the probe on a later pass.
			ks.probing = false
		}
		t.mu.Unlock()
		return nil, fmt.Errorf("%s (%s): wait for rate limit: %w", t.opts.Upstream, ks.name, cmp.Or(ctx.Err(), err))
	}
}

// finish does the breaker's accounting for the request of tk and learns
// the limits its response reports.
func (t *Transport) finish(ks *keyState, tk *ticket, ctx context.Context, resp *http.Response, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	delete(ks.inflight, tk.seq)

	switch outcome(ctx, resp, err) {
	case failure:
		ks.failures++
		switch {
		case tk.probe:
			ks.probing = false
			ks.period = min(2*ks.period, t.opts.MaxOpenFor)
			ks.openUntil = now.Add(ks.period)
		case !ks.open && ks.failures >= t.opts.FailureThreshold:
			ks.open = true
			ks.period = t.opts.OpenFor
			ks.openUntil = now.Add(ks.period)
			t.metrics.opened(ks.name)
		}
	case success:
		// While the breaker is open only the probe's answer counts: other
		// answers are from requests sent before it opened.
		if tk.probe || !ks.open {
			ks.failures = 0
			ks.open, ks.probing = false, false
			ks.period = t.opts.OpenFor
		}
	default:
		if tk.probe {
			ks.probing = false
		}
	}

	if resp != nil {
		t.learn(ks, tk, resp, now)
	}
	ks.wake()
}

type result int

const (
	cancelled result = iota
	failure
	success
)

// outcome classifies an answer for the breaker. A rate limit (429) is a
// success: the upstream is up, it is just busy.
func outcome(ctx context.Context, resp *http.Response, err error) result {
	if err != nil {
		if ctx.Err() != nil {
			return cancelled
		}
		return failure
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 529:
		return failure
	}
	return success
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// closeBody honours the RoundTripper contract for requests never sent.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// releaseBody frees the key's concurrency slot when the caller is done
// with the response.
type releaseBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
