package pace

import (
	"context"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// keyState is everything the Transport knows about one key. All fields
// but sem are guarded by Transport.mu.
type keyState struct {
	name string
	sem  chan struct{} // concurrency slots; nil = unlimited

	buckets     map[string]*bucket
	pausedUntil time.Time   // set by 429s and secondary limits
	writes      []time.Time // start times of recent writes, oldest first

	seq      uint64              // number of requests started
	rejected uint64              // number of answers that were 429
	inflight map[uint64]struct{} // seqs of requests sent and not yet answered

	waiters    map[uint64]context.CancelFunc // ends the sleep of each waiting request
	lastWaiter uint64

	// The write gate (gate.go): writes granted and not yet started, the
	// claims told to wait, by job, and the fair-queuing clock and each
	// repository's last tag.
	promised int
	claims   map[string]*waiter
	vtime    int64
	finish   map[string]int64

	// Breaker.
	failures  int
	open      bool // open or half-open
	openUntil time.Time
	period    time.Duration
	probing   bool
}

// ticket is one admitted request.
type ticket struct {
	seq     uint64
	start   time.Time
	overlap int // requests in flight when it started
	probe   bool
}

// wake makes every waiting request look again: what the key knows changed.
func (ks *keyState) wake() {
	for id, wake := range ks.waiters {
		wake()
		delete(ks.waiters, id)
	}
}

func (ks *keyState) release() {
	if ks.sem != nil {
		<-ks.sem
	}
}

// wait returns how long a request must wait before it may start (0 when
// it may start now), and the part of that only time ends: a pause, the
// write window, a window's reset or a bucket's refill, but not a wait for
// an answer to say what requests cost (any answer may end that one).
func (ks *keyState) wait(now time.Time, write bool, resource string, opts *Options) (d, timed time.Duration) {
	next := ks.pausedUntil
	if write {
		next = later(next, ks.nextWrite(opts))
	}
	timed = next.Sub(now)
	d = timed
	for name, b := range ks.buckets {
		if resource != "" && name != resource {
			continue
		}
		w := b.wait(now, len(ks.inflight) == 0)
		d = max(d, w)
		if w != untilAnswer {
			timed = max(timed, w)
		}
	}
	if d <= 0 {
		return 0, timed
	}
	// Floating-point estimates can ask for a few nanoseconds more after a
	// wait; do not spin on them.
	return max(d, time.Millisecond), timed
}

// waitingFor names what a request waits for the longest, for people.
func (ks *keyState) waitingFor(now time.Time, write bool, opts *Options) string {
	switch {
	case write && ks.nextWrite(opts).After(ks.pausedUntil) && ks.nextWrite(opts).After(now):
		return "the write window"
	case ks.pausedUntil.After(now):
		return "the end of a rate-limit pause"
	}
	return "a rate-limit bucket to refill"
}

// begin records that a request starts now: it takes its share of every
// bucket it draws on and, for a write, its place in the write window.
func (ks *keyState) begin(now time.Time, write bool, resource string, probe bool, opts *Options) *ticket {
	ks.seq++
	tk := &ticket{seq: ks.seq, start: now, overlap: len(ks.inflight), probe: probe}
	ks.inflight[ks.seq] = struct{}{}
	for name, b := range ks.buckets {
		if resource == "" || name == resource {
			b.take(now)
		}
	}
	if write && (opts.WritesPerMinute > 0 || opts.WritesPerHour > 0 || opts.WriteSpacing > 0) {
		ks.writes = append(ks.writes, now)
		ks.pruneWrites(now, opts)
	}
	return tk
}

// nextWrite is the earliest time the write window lets a write start.
// A write at s is allowed when fewer than WritesPerMinute writes started
// in (s-60s, s], fewer than WritesPerHour in (s-1h, s], and the last one
// started at least WriteSpacing before s.
func (ks *keyState) nextWrite(opts *Options) time.Time {
	var next time.Time
	n := len(ks.writes)
	if limit := opts.WritesPerMinute; limit > 0 && n >= limit {
		next = later(next, ks.writes[n-limit].Add(time.Minute))
	}
	if limit := opts.WritesPerHour; limit > 0 && n >= limit {
		next = later(next, ks.writes[n-limit].Add(time.Hour))
	}
	if opts.WriteSpacing > 0 && n > 0 {
		next = later(next, ks.writes[n-1].Add(opts.WriteSpacing))
	}
	return next
}

// pruneWrites forgets writes that no longer constrain the next one, which
// bounds the log by the larger of the two limits.
func (ks *keyState) pruneWrites(now time.Time, opts *Options) {
	var keep time.Duration
	switch {
	case opts.WritesPerHour > 0:
		keep = time.Hour
	case opts.WritesPerMinute > 0:
		keep = time.Minute
	}
	cut := now.Add(-keep)
	// The last write always stays: WriteSpacing counts from it.
	i := 0
	for i < len(ks.writes)-1 && !ks.writes[i].After(cut) {
		i++
	}
	ks.writes = slices.Delete(ks.writes, 0, i)
}

// writesSince counts the writes that started after cut.
func (ks *keyState) writesSince(cut time.Time) int {
	i, _ := slices.BinarySearchFunc(ks.writes, cut, func(w, c time.Time) int {
		if w.After(c) {
			return 1
		}
		return -1
	})
	return len(ks.writes) - i
}

func (ks *keyState) pause(until time.Time) { ks.pausedUntil = later(ks.pausedUntil, until) }

func (ks *keyState) state(now time.Time, opts *Options) State {
	s := State{
		Key:                 ks.name,
		CircuitOpen:         ks.open,
		ConsecutiveFailures: ks.failures,
	}
	if ks.open {
		s.OpenUntil = ks.openUntil
	}
	for _, b := range ks.buckets {
		s.Buckets = append(s.Buckets, b.snapshot(now))
	}
	window := func(name string, limit int, span time.Duration) {
		if limit <= 0 {
			return
		}
		n := ks.writesSince(now.Add(-span))
		wb := Bucket{Name: name, Limit: int64(limit), Remaining: int64(max(limit-n, 0))}
		if n > 0 {
			wb.Reset = ks.writes[len(ks.writes)-1].Add(span)
		}
		s.Buckets = append(s.Buckets, wb)
	}
	window("writes-minute", opts.WritesPerMinute, time.Minute)
	window("writes-hour", opts.WritesPerHour, time.Hour)
	slices.SortFunc(s.Buckets, func(a, b Bucket) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// resource names the bucket a request draws on: for GitHub the resource
// its path counts against (search, code_search, graphql, core; "-" for
// /rate_limit, which GitHub does not count); "" (every bucket) otherwise.
func (t *Transport) resource(req *http.Request) string {
	if t.opts.Upstream != GitHub {
		return ""
	}
	p := req.URL.Path
	switch {
	case strings.HasSuffix(p, "/rate_limit"):
		return "-"
	case strings.Contains(p, "/search/code"):
		return "code_search"
	case strings.Contains(p, "/search/"):
		return "search"
	case strings.HasSuffix(p, "/graphql"):
		return "graphql"
	}
	return "core"
}

// bucket is the local estimate of one upstream limit of a key. It comes in
// two kinds: Anthropic's continuous token buckets (capacity limit, refilled
// at rate per second) and GitHub's fixed windows (est requests left until
// reset, then full again).
type bucket struct {
	name     string
	window   bool
	limit    float64
	est      float64   // available at estAt (continuous) or left in the window
	estAt    time.Time // continuous only
	rate     float64   // refill per second, continuous only; errs low
	rateHigh float64   // errs high; see learnRate
	reset    time.Time // window only; zero when unknown

	// cost is what one request takes: 1 for request buckets; for token
	// buckets, a decaying average of the consumption inferred from the
	// answers (see sampleCost), 0 until there is one.
	cost      float64
	tokens    bool
	costKnown bool       // from a sample or a refusal
	guess     float64    // cost to count requests at while it is not known
	costUsed  float64    // decayed sum of inferred consumption; see learnCost
	costN     float64    // decayed count of the requests it is over
	base      *costPoint // where the next cost sample starts

	lastStart time.Time // window only: for spreading the last 10%

	// The seq of the request of the newest observation applied.
	obsSeq uint64
}

// available is the estimate at now.
func (b *bucket) available(now time.Time) float64 {
	if b.window {
		if !b.reset.IsZero() && !now.Before(b.reset) {
			return b.limit
		}
		return b.est
	}
	return min(b.limit, b.est+b.rate*now.Sub(b.estAt).Seconds())
}

// need is what must be available before a request may start: one
// request, or the average token cost of one. Capped at the capacity, so
// that a bucket smaller than a request still lets it through when full.
func (b *bucket) need() float64 {
	return min(max(b.cost, 1), b.limit)
}

// untilAnswer is how long to wait for something only an answer can
// change; every answer wakes the waiters.
const untilAnswer = time.Minute

// unitCost is what a request is counted at in the estimate: the cost, or
// the guess while the cost is not known (which is not good enough to hold
// requests back by, but better than nothing to count them by).
func (b *bucket) unitCost() float64 {
	if b.tokens && !b.costKnown {
		return b.guess
	}
	return b.cost
}

func (b *bucket) wait(now time.Time, idle bool) time.Duration {
	a := b.available(now)
	if b.window {
		if b.reset.IsZero() || !b.reset.After(now) {
			return 0
		}
		if a < 1 {
			return b.reset.Sub(now)
		}
		if a < b.limit/10 {
			// Spread what is left evenly over the rest of the window.
			interval := seconds(b.reset.Sub(now).Seconds() / a)
			return b.lastStart.Add(interval).Sub(now)
		}
		return 0
	}
	if b.tokens && !b.costKnown && a < b.limit/2 && !idle {
		// What a request costs is not known yet and the bucket is no
		// longer plentiful: one request at a time, until an answer tells.
		return untilAnswer
	}
	need := b.need()
	if a >= need-1e-9 || b.rate <= 0 {
		return 0
	}
	return seconds((need - a) / b.rate)
}

func (b *bucket) take(now time.Time) {
	if b.window {
		if !b.reset.IsZero() && !now.Before(b.reset) {
			b.est, b.reset = b.limit, time.Time{}
		}
		b.est--
		b.lastStart = now
		return
	}
	b.est = b.available(now) - b.unitCost()
	b.estAt = now
}

func (b *bucket) snapshot(now time.Time) Bucket {
	a := b.available(now)
	s := Bucket{Name: b.name, Limit: int64(b.limit), Remaining: int64(math.Max(0, math.Floor(a)))}
	switch {
	case b.window:
		if b.reset.After(now) {
			s.Reset = b.reset
		}
	case b.rate > 0:
		s.Reset = now.Add(seconds((b.limit - a) / b.rate))
	}
	return s
}

// seconds converts a float number of seconds to a Duration, rounding up.
func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	if s > float64(math.MaxInt64/int64(time.Second)) {
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
