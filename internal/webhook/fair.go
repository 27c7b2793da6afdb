package webhook

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// clients keeps what each client holds before its signature is checked,
// and the failures that put it in the penalty box. The table is bounded:
// a client that holds nothing and owes nothing is forgotten at once, and
// when the table is full the idle ones go, those in the penalty box last.
type clients struct {
	share         int64 // body bytes one client may hold unverified; 0: no limit
	maxUnverified int   // requests one client may have unverified; 0: no limit
	strikes       int   // failures within window that start a penalty; 0: never
	window        time.Duration
	penalty       time.Duration
	max           int

	mu      sync.Mutex
	m       map[netip.Addr]*client
	evictAt int
}

// client is one address's standing (one IPv6 /64's).
type client struct {
	key       netip.Addr
	share     *semaphore.Weighted // body bytes; nil without a share limit
	slots     *semaphore.Weighted // unverified requests; nil without a limit
	active    int                 // requests in flight
	strikes   int                 // failures in the window ending at windowEnd
	windowEnd time.Time
	until     time.Time // in the penalty box until then
}

func newClients(o Options) *clients {
	cs := &clients{
		maxUnverified: max(o.ClientMaxUnverified, 0),
		strikes:       max(o.PenaltyFailures, 0),
		window:        o.PenaltyWindow,
		penalty:       o.PenaltyDuration,
		max:           o.MaxClients,
		m:             make(map[netip.Addr]*client),
	}
	if share := int64(float64(o.BodyMemory) * o.ClientBodyShare); share < o.BodyMemory {
		cs.share = max(share, 1)
	}
	cs.evictAt = cs.max
	return cs
}

// visit is one request's standing with its client.
type visit struct {
	addr       netip.Addr // the client, as told through trusted proxies
	c          *client    // nil until admitted
	unverified bool       // admitted, not verified yet: holds one of the client's places
	read       bool       // the body was read to its end
}

// errBusy refuses a request that found none of its client's unverified
// places free in time.
var errBusy = &reqError{code: http.StatusTooManyRequests, reason: "busy", retryAfter: time.Second,
	msg: "too many requests from this address being read at once; retry later"}

// admit counts v against its client, or refuses it (429) while the client
// is in the penalty box. Its unverified place is taken by the caller.
func (cs *clients) admit(v *visit, now time.Time) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	key := clientKey(v.addr)
	c := cs.m[key]
	if c == nil {
		if len(cs.m) >= cs.evictAt {
			cs.evict(now)
		}
		c = &client{key: key}
		if cs.share > 0 {
			c.share = semaphore.NewWeighted(cs.share)
		}
		if cs.maxUnverified > 0 {
			c.slots = semaphore.NewWeighted(int64(cs.maxUnverified))
		}
		cs.m[key] = c
	}
	if now.Before(c.until) {
		return &reqError{code: http.StatusTooManyRequests, reason: "penalty", retryAfter: c.until.Sub(now),
			msg: "too many failed deliveries from this address; retry later"}
	}
	c.active++
	v.c = c
	return nil
}

// vouch gives back v's unverified place once its signature checks out.
func (cs *clients) vouch(v *visit) {
	if v.unverified {
		if v.c.slots != nil {
			v.c.slots.Release(1)
		}
		v.unverified = false
	}
}

// leave ends v's request. A strike counts a failure against its client;
// leave reports whether that put the client in the penalty box.
func (cs *clients) leave(v *visit, strike bool, now time.Time) (penalised bool) {
	c := v.c
	if c == nil {
		return false
	}
	cs.vouch(v)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c.active--
	if strike && cs.strikes > 0 {
		if !now.Before(c.windowEnd) {
			c.strikes, c.windowEnd = 0, now.Add(cs.window)
		}
		if c.strikes++; c.strikes >= cs.strikes {
			c.strikes, c.until, penalised = 0, now.Add(cs.penalty), true
		}
	}
	if c.active == 0 && c.idle(now) && cs.m[c.key] == c {
		delete(cs.m, c.key)
	}
	return penalised
}

// idle reports whether c owes nothing: no strikes in a running window, no
// penalty.
func (c *client) idle(now time.Time) bool {
	return (c.strikes == 0 || !now.Before(c.windowEnd)) && !now.Before(c.until)
}

// evict makes room in a full table: first the clients that hold and owe
// nothing, then, while the table is still over three quarters full, those
// with strikes, and last those in the penalty box (they start again with a
// clean slate). Clients with requests in flight stay. Called with mu held.
func (cs *clients) evict(now time.Time) {
	for _, gone := range []func(*client) bool{
		func(c *client) bool { return c.idle(now) },
		func(c *client) bool { return !now.Before(c.until) },
		func(*client) bool { return true },
	} {
		for k, c := range cs.m {
			if len(cs.m) <= cs.max*3/4 {
				break
			}
			if c.active == 0 && gone(c) {
				delete(cs.m, k)
			}
		}
	}
	// Whatever is left is in flight: the next eviction waits until the
	// table has grown by an eighth again, so each costs a pass for many
	// newcomers.
	cs.evictAt = max(cs.max, len(cs.m)+cs.max/8)
}

// size is how many clients the table holds.
func (cs *clients) size() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}
