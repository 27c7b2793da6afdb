package pace_test

import (
	"context"
	"slices"
	"sync"
	"time"
)

// epoch is where fake clocks start: a whole second, like the reset
// headers the fake servers send.
var epoch = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

// fakeClock is the Transport's clock in tests. Alone, every Sleep moves
// the clock forward at once. Under run, it is a discrete-event simulation:
// the clock moves (to the earliest wake-up asked for) only when every
// worker is asleep, so no fake time passes while a request is in flight
// and concurrent sleepers wake in the order real time would wake them.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	workers  int
	sleepers []*sleeper
}

type sleeper struct {
	at   time.Time
	wake chan struct{}
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Since is the fake time elapsed since t.
func (c *fakeClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	c.mu.Lock()
	if c.workers == 0 {
		c.now = c.now.Add(d)
		c.mu.Unlock()
		return nil
	}
	s := &sleeper{at: c.now.Add(d), wake: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	c.advanceLocked()
	c.mu.Unlock()
	select {
	case <-s.wake:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		c.sleepers = slices.DeleteFunc(c.sleepers, func(x *sleeper) bool { return x == s })
		c.mu.Unlock()
		return ctx.Err()
	}
}

// advanceLocked wakes sleepers while every worker sleeps.
func (c *fakeClock) advanceLocked() {
	for c.workers > 0 && len(c.sleepers) >= c.workers {
		next := c.sleepers[0].at
		for _, s := range c.sleepers[1:] {
			if s.at.Before(next) {
				next = s.at
			}
		}
		if next.After(c.now) {
			c.now = next
		}
		c.sleepers = slices.DeleteFunc(c.sleepers, func(s *sleeper) bool {
			if s.at.After(c.now) {
				return false
			}
			close(s.wake)
			return true
		})
	}
}

// run calls f(0) ... f(n-1) in n goroutines that the clock waits for, and
// returns when all have returned.
func (c *fakeClock) run(n int, f func(i int)) {
	c.mu.Lock()
	c.workers += n
	c.mu.Unlock()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer func() {
				c.mu.Lock()
				c.workers--
				c.advanceLocked()
				c.mu.Unlock()
			}()
			f(i)
		})
	}
	wg.Wait()
}
