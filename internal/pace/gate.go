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
// (lower first), then round-robin between repositories, so that one
// repository's backlog cannot starve another's.
type Claim struct {
	Key      string // the credential the writes go out under (see WithKey)
	Repo     string // whose backlog the claim is part of
	Job      string // who claims; the same across a job's snoozes
	Priority int    // lower is served first
	Writes   int    // writes the answer needs
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
type waiter struct {
	Claim
	since, expires time.Time
}

type grantContext struct{}

// WithGrant returns ctx carrying g: writes sent with it use g's writes.
func WithGrant(ctx context.Context, g *Grant) context.Context {
	return context.WithValue(ctx, grantContext{}, g)
}

// Admit grants c's writes when, with every write promised before and every
// claim ahead of c in line, they can all start within ahead; otherwise it
// returns a *WaitError for when c's turn is expected, and keeps c in line.
// A job that is granted must Release the grant when it is done.
func (t *Transport) Admit(c Claim, ahead time.Duration) (*Grant, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	ks := t.key(c.Key)
	ks.forgetWaiters(now)
	w := ks.claims[c.Job]
	if w == nil {
		w = &waiter{Claim: c, since: now}
	}
	w.Claim = c
	line := ks.line(w)
	needed := ks.promised + c.Writes
	for _, o := range line {
		needed += o.Writes
	}
	at := ks.startOf(needed, now, &t.opts)
	if !at.After(now.Add(ahead)) {
		delete(ks.claims, c.Job)
		ks.promised += c.Writes
		return &Grant{t: t, ks: ks, left: c.Writes}, nil
	}
	wait := max(at.Sub(now)-ahead, time.Second)
	w.expires = now.Add(wait + ahead + time.Minute)
	ks.claims[c.Job] = w
	return nil, &WaitError{Upstream: t.opts.Upstream, Key: c.Key, RetryAfter: wait,
		What: fmt.Sprintf("its turn in the write window (%d claims ahead)", len(line))}
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

// forgetWaiters drops the claims that did not come back in time.
func (ks *keyState) forgetWaiters(now time.Time) {
	for job, w := range ks.claims {
		if now.After(w.expires) {
			delete(ks.claims, job)
		}
	}
}

// line returns the claims waiting ahead of w: every claim of a lower
// priority number, then, among claims of w's priority, those before it in
// round-robin order (each repository's oldest claim first, then each one's
// second, and so on; repositories in the order they started waiting).
func (ks *keyState) line(w *waiter) []*waiter {
	byRepo := map[string][]*waiter{}
	var ahead []*waiter
	for _, o := range ks.claims {
		switch {
		case o.Job == w.Job:
		case o.Priority < w.Priority:
			ahead = append(ahead, o)
		case o.Priority == w.Priority:
			byRepo[o.Repo] = append(byRepo[o.Repo], o)
		}
	}
	byRepo[w.Repo] = append(byRepo[w.Repo], w)
	older := func(a, b *waiter) int {
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.Job, b.Job))
	}
	repos := make([][]*waiter, 0, len(byRepo))
	for _, ws := range byRepo {
		slices.SortFunc(ws, older)
		repos = append(repos, ws)
	}
	slices.SortFunc(repos, func(a, b []*waiter) int { return older(a[0], b[0]) })
	mine := slices.Index(byRepo[w.Repo], w)
	for _, ws := range repos {
		n := min(len(ws), mine)
		if ws[0].Repo != w.Repo && len(ws) > mine && older(ws[0], byRepo[w.Repo][0]) < 0 {
			n++ // its claim of this round comes before w's
		}
		ahead = append(ahead, ws[:n]...)
	}
	return ahead
}

// startOf is when the n-th write from now could start, if every earlier
// one started as early as the window allows.
func (ks *keyState) startOf(n int, now time.Time, opts *Options) time.Time {
	if n <= 0 {
		return now
	}
	sim := &keyState{writes: slices.Clone(ks.writes)}
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

// Backlogs returns each key's backlog, sorted by key; keys with nothing
// waiting are left out.
func (t *Transport) Backlogs() []Backlog {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.opts.Now()
	var out []Backlog
	for _, ks := range t.keys {
		ks.forgetWaiters(now)
		b := Backlog{Key: ks.name, Claims: len(ks.claims), Writes: ks.promised}
		for _, w := range ks.claims {
			b.Writes += w.Writes
		}
		if b.Writes == 0 {
			continue
		}
		b.DrainIn = ks.startOf(b.Writes, now, &t.opts).Sub(now)
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Backlog) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
