package pace

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// A Claim asks, before a model call is paid for, for the writes its answer
// will need. Jobs that cannot have them soon wait their turn: by Priority
// (lower first), then in fair turns between repositories, so that one
// repository's backlog cannot starve another's.
type Claim struct {
	Key      string // the credential the writes go out under (see WithKey)
	Repo     string // whose backlog the claim is part of
	Job      string // who claims; the same across a job's snoozes
	Priority int    // lower is served first
	Writes   int    // writes the answer needs
	// Arrived orders claims that are otherwise equal: the oldest work is
	// served first. Zero: when the claim is first made.
	Arrived time.Time
}

// Grant holds writes promised to a claim. Writes sent with a context that
// carries it (WithGrant) use them up; Release gives back the rest.
type Grant struct {
	t    *Transport
	ks   *keyState
	left int
}

// waiter is a claim that was told to wait, kept so that the claims behind
// it know their turn. It is forgotten at expires when it does not return.
//
// Turns between repositories are fair queuing: each claim gets a tag when
// it first waits, its repository's previous tag (or the key's virtual
// time, whichever is later) plus its writes; claims are served in tag
// order, and serving a claim moves the virtual time to its tag. A
// repository with a thousand claims holds tags far ahead; one that starts
// waiting later gets tags from the current virtual time, so the two
// alternate, whatever order their jobs come back in.
type waiter struct {
	Claim
	tag     int64
	expires time.Time
}

type grantContext struct{}

// WithGrant returns ctx carrying g: writes sent with it use g's writes.
func WithGrant(ctx context.Context, g *Grant) context.Context {
	return context.WithValue(ctx, grantContext{}, g)
}

// Admit grants c's writes when, with every write promised before and every
// claim ahead of c in line, they can all start within ahead; otherwise it
// returns a *WaitError for when c's turn is expected, and keeps c in line.
// A job that is granted must Release the grant when it is done. With a
// shared window, the writes the fleet made and reserved count; the
// promises and the line are this process's.
func (t *Transport) Admit(ctx context.Context, c Claim, ahead time.Duration) (*Grant, error) {
	var fleet []time.Time
	if t.opts.Shared != nil {
		var err error
		if fleet, err = t.opts.Shared.WriteSlots(ctx, c.Key, t.opts.Now()); err != nil {
			return nil, fmt.Errorf("%s (%s): shared write window: %w", t.opts.Upstream, c.Key, err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	ks := t.key(c.Key)
	ks.forgetWaiters(now)
	w := ks.waiter(c, now)
	line := ks.line(w)
	needed := ks.promised + c.Writes
	for _, o := range line {
		needed += o.Writes
	}
	at := ks.startOf(needed, now, fleet, &t.opts)
	if !at.After(now.Add(ahead)) {
		delete(ks.claims, c.Job)
		ks.vtime = max(ks.vtime, w.tag)
		ks.promised += c.Writes
		return &Grant{t: t, ks: ks, left: c.Writes}, nil
	}
	wait := max(at.Sub(now)-ahead, time.Second)
	w.expires = now.Add(wait + ahead + time.Minute)
	ks.claims[c.Job] = w
	return nil, &WaitError{Upstream: t.opts.Upstream, Key: c.Key, RetryAfter: wait,
		What: fmt.Sprintf("its turn in the write window (%d claims ahead)", len(line))}
}

// waiter returns c's place in line: the one it holds, or a new one after
// its repository's last.
func (ks *keyState) waiter(c Claim, now time.Time) *waiter {
	if w := ks.claims[c.Job]; w != nil {
		c.Arrived = w.Arrived
		w.Claim = c
		return w
	}
	if c.Arrived.IsZero() {
		c.Arrived = now
	}
	tag := max(ks.vtime, ks.finish[c.Repo]) + int64(c.Writes)
	ks.finish[c.Repo] = tag
	return &waiter{Claim: c, tag: tag}
}

// Withdraw takes job's claims out of line: it ended without needing its
// turn (skipped, coalesced, failed), and must not hold up the claims
// behind it until it would have expired.
func (t *Transport) Withdraw(job string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ks := range t.keys {
		delete(ks.claims, job)
	}
}

// Release gives back the writes of g that were not sent. It may be called
// more than once.
func (g *Grant) Release() {
	if g == nil {
		return
	}
	g.t.mu.Lock()
	defer g.t.mu.Unlock()
	g.ks.promised -= g.left
	g.left = 0
}

// useGrant counts a write that starts under ks against the grant in ctx.
// t.mu must be held.
func useGrant(ctx context.Context, ks *keyState) {
	g, _ := ctx.Value(grantContext{}).(*Grant)
	if g != nil && g.ks == ks && g.left > 0 {
		g.left--
		ks.promised--
	}
}

// forgetWaiters drops the claims that did not come back in time, and the
// repositories whose turns are all served.
func (ks *keyState) forgetWaiters(now time.Time) {
	for job, w := range ks.claims {
		if now.After(w.expires) {
			delete(ks.claims, job)
		}
	}
	for repo, tag := range ks.finish {
		if tag <= ks.vtime {
			delete(ks.finish, repo)
		}
	}
}

// line returns the claims waiting ahead of w: by priority, then tag, then
// arrival.
func (ks *keyState) line(w *waiter) []*waiter {
	var ahead []*waiter
	for _, o := range ks.claims {
		if o.Job != w.Job && before(o, w) {
			ahead = append(ahead, o)
		}
	}
	return ahead
}

func before(a, b *waiter) bool {
	return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.tag, b.tag),
		a.Arrived.Compare(b.Arrived), cmp.Compare(a.Job, b.Job)) < 0
}

// startOf is when the n-th write from now could start, if every earlier
// one started as early as the window allows. fleet, when not nil, holds
// the shared window's starts, which include this process's writes.
func (ks *keyState) startOf(n int, now time.Time, fleet []time.Time, opts *Options) time.Time {
	if n <= 0 {
		return now
	}
	sim := &keyState{writes: slices.Clone(ks.writes)}
	if fleet != nil {
		sim.writes = slices.Clone(fleet)
	}
	at := now
	for range n {
		at = later(later(now, ks.pausedUntil), sim.nextWrite(opts))
		sim.writes = append(sim.writes, at)
	}
	return at
}

// Backlog is what waits for one key's write window.
type Backlog struct {
	Key     string
	Claims  int           // claims waiting their turn
	Writes  int           // writes they and the grants not yet used need
	DrainIn time.Duration // until the last of those writes can start
}

// Backlogs returns the backlog of each key used so far, sorted by key;
// none without a write window.
func (t *Transport) Backlogs() []Backlog {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	out := []Backlog{}
	if t.opts.WritesPerMinute <= 0 && t.opts.WritesPerHour <= 0 {
		return out
	}
	for _, ks := range t.keys {
		ks.forgetWaiters(now)
		b := Backlog{Key: ks.name, Claims: len(ks.claims), Writes: ks.promised}
		for _, w := range ks.claims {
			b.Writes += w.Writes
		}
		b.DrainIn = ks.startOf(b.Writes, now, nil, &t.opts).Sub(now)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Backlog) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
