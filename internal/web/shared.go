package web

import (
	"context"
	"sync"
	"time"
)

// shared is a check or query whose result is shared: every caller that
// asks while it runs, or within ttl of its end, gets that run's result,
// so that any number of probes or scrapes cost one run per ttl. A run is
// bounded by timeout and does not end when the caller that started it
// goes away.
type shared[T any] struct {
	fn      func(context.Context) (T, error)
	ttl     time.Duration
	timeout time.Duration

	mu      sync.Mutex
	at      time.Time // when the last run ended; zero before the first
	val     T
	err     error
	running chan struct{} // closed when the run in progress ends; nil when none runs
}

func newShared[T any](ttl, timeout time.Duration, fn func(context.Context) (T, error)) *shared[T] {
	return &shared[T]{fn: fn, ttl: ttl, timeout: timeout}
}

// get returns the last run's result if it is fresh, else waits for a run
// (starting one unless one is under way) or for ctx to end.
func (s *shared[T]) get(ctx context.Context) (T, error) {
	s.mu.Lock()
	if s.running == nil && !s.at.IsZero() && time.Since(s.at) < s.ttl {
		defer s.mu.Unlock()
		return s.val, s.err
	}
	done := s.running
	if done == nil {
		done = make(chan struct{})
		s.running = done
		go s.run(done)
	}
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.val, s.err
}

func (s *shared[T]) run(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	v, err := s.fn(ctx)
	s.mu.Lock()
	s.val, s.err, s.at, s.running = v, err, time.Now(), nil
	s.mu.Unlock()
	close(done)
}
