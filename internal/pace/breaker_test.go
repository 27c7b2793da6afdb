package pace_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/pace"
)

// scripted answers requests with the statuses in order, then 200.
type scripted struct {
	mu       sync.Mutex
	statuses []int
	calls    int
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	status := http.StatusOK
	if len(s.statuses) > 0 {
		status, s.statuses = s.statuses[0], s.statuses[1:]
	}
	s.mu.Unlock()
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
}

func (s *scripted) script(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses = append(s.statuses, statuses...)
}

func (s *scripted) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func repeat(status, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = status
	}
	return s
}

// wantOpen checks that a request gets an *OpenError (through the
// *url.Error of http.Client) that asks to wait retry, without reaching
// the server.
func wantOpen(t *testing.T, tr http.RoundTripper, srv *scripted, url string, retry time.Duration) {
	t.Helper()
	calls := srv.Calls()
	_, err := send(context.Background(), tr, "sonnet", http.MethodPost, url)
	var oe *pace.OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("POST = %v, want an *OpenError", err)
	}
	if got := oe.RetryAfterDuration(); got != retry {
		t.Errorf("RetryAfterDuration() = %v, want %v", got, retry)
	}
	if !oe.Temporary() {
		t.Errorf("Temporary() = false, want true")
	}
	if got := srv.Calls(); got != calls {
		t.Errorf("server calls = %d, want %d (no call while open)", got, calls)
	}
}

func TestBreakerCounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		statuses []int
		wantOpen bool
	}{
		{"five 503s", repeat(503, 5), true},
		{"every failing status", []int{500, 502, 503, 504, 529}, true},
		{"four 503s", repeat(503, 4), false},
		{"a 429 between", append(append(repeat(503, 4), 429), repeat(503, 4)...), false},
		{"a 404 between", append(append(repeat(503, 4), 404), repeat(503, 4)...), false},
		{"a 200 between", append(append(repeat(503, 4), 200), repeat(503, 4)...), false},
		{"400, 401, 403, 422 and 429s", []int{400, 401, 403, 422, 429, 429, 429, 429, 429, 429}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &scripted{}
			srv.script(tc.statuses...)
			url := newServer(t, srv.ServeHTTP).URL + "/v1/messages"
			tr := newTransport(t, newClock(), pace.Options{Upstream: pace.Anthropic})
			for range tc.statuses {
				mustSend(t, tr, "sonnet", http.MethodPost, url)
			}
			_, err := send(context.Background(), tr, "sonnet", http.MethodPost, url)
			var oe *pace.OpenError
			if got := errors.As(err, &oe); got != tc.wantOpen {
				t.Errorf("after %v: open = %v (%v), want %v", tc.statuses, got, err, tc.wantOpen)
			}
		})
	}
}

func TestBreakerCycle(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := &scripted{}
	url := newServer(t, srv.ServeHTTP).URL + "/v1/messages"
	tr := newTransport(t, clock, pace.Options{Upstream: pace.Anthropic, OpenFor: 10 * time.Second, MaxOpenFor: 25 * time.Second})

	srv.script(repeat(503, 5)...)
	for range 5 {
		mustSend(t, tr, "sonnet", http.MethodPost, url)
	}
	wantOpen(t, tr, srv, url, 10*time.Second)
	clock.Advance(2 * time.Second)
	wantOpen(t, tr, srv, url, 8*time.Second)
	_, err := send(context.Background(), tr, "sonnet", http.MethodPost, url)
	if got, want := err.Error(), "anthropic (sonnet): circuit open after 5 consecutive failures; retry in 8s"; !strings.HasSuffix(got, want) {
		t.Errorf("error = %q, want it to end in %q", got, want)
	}
	st := stateOf(t, tr, "sonnet")
	if !st.CircuitOpen || st.ConsecutiveFailures != 5 || !st.OpenUntil.Equal(epoch.Add(10*time.Second)) {
		t.Errorf("States() = %+v, want open until +10s after 5 failures", st)
	}
	// Another key is not affected.
	if _, err := send(context.Background(), tr, "haiku", http.MethodPost, url); err != nil {
		t.Errorf("POST with another key: %v", err)
	}

	// Failed probes double the open period, up to MaxOpenFor.
	for _, next := range []time.Duration{20 * time.Second, 25 * time.Second, 25 * time.Second} {
		clock.Advance(stateOf(t, tr, "sonnet").OpenUntil.Sub(clock.Now()))
		srv.script(503)
		mustSend(t, tr, "sonnet", http.MethodPost, url)
		wantOpen(t, tr, srv, url, next)
	}

	// A successful probe closes it.
	clock.Advance(25 * time.Second)
	if got := mustSend(t, tr, "sonnet", http.MethodPost, url); got != http.StatusOK {
		t.Fatalf("probe = %d, want 200", got)
	}
	if st := stateOf(t, tr, "sonnet"); st.CircuitOpen || st.ConsecutiveFailures != 0 {
		t.Errorf("States() after a good probe = %+v, want closed, 0 failures", st)
	}
	for range 3 {
		mustSend(t, tr, "sonnet", http.MethodPost, url)
	}
	// And the next opening starts from OpenFor again.
	srv.script(repeat(503, 5)...)
	for range 5 {
		mustSend(t, tr, "sonnet", http.MethodPost, url)
	}
	wantOpen(t, tr, srv, url, 10*time.Second)
}

func TestBreakerOneProbe(t *testing.T) {
	t.Parallel()
	clock := newClock()
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1, 2, 3, 4, 5:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 6:
			close(entered)
			<-release
		}
	})
	tr := newTransport(t, clock, pace.Options{Upstream: pace.GitHub})
	for range 5 {
		mustSend(t, tr, "token", http.MethodGet, srv.URL)
	}
	clock.Advance(pace.DefaultOpenFor)

	probe := make(chan error, 1)
	go func() {
		_, err := send(context.Background(), tr, "token", http.MethodGet, srv.URL)
		probe <- err
	}()
	<-entered
	for range 3 {
		_, err := send(context.Background(), tr, "token", http.MethodGet, srv.URL)
		var oe *pace.OpenError
		if !errors.As(err, &oe) || oe.RetryAfter <= 0 {
			t.Errorf("request during the probe = %v, want an *OpenError with RetryAfter > 0", err)
		}
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := calls.Load(); got != 6 {
		t.Errorf("server calls = %d, want 6 (5 failures and one probe)", got)
	}
	mustSend(t, tr, "token", http.MethodGet, srv.URL)
}

func stateOf(t *testing.T, tr *pace.Transport, key string) pace.State {
	t.Helper()
	for _, s := range tr.States() {
		if s.Key == key {
			return s
		}
	}
	t.Fatalf("States() has no key %q", key)
	return pace.State{}
}

// roundTripFunc is a transport that fails without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBreakerTransportErrors(t *testing.T) {
	t.Parallel()
	refused := errors.New("dial tcp 127.0.0.1:1: connection refused")
	tests := []struct {
		name     string
		cancel   bool
		wantOpen bool
	}{
		{"network errors open it", false, true},
		{"cancelled requests do not", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := pace.NewTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if err := r.Context().Err(); err != nil {
					return nil, err
				}
				return nil, refused
			}), pace.Options{Upstream: pace.GitHub})
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			}
			t.Cleanup(cancel)
			for range 6 {
				req, _ := http.NewRequestWithContext(pace.WithKey(ctx, "token"), http.MethodGet, "http://api.github.invalid/user", nil)
				_, err := tr.RoundTrip(req)
				if err == nil {
					t.Fatal("RoundTrip = nil error, want one")
				}
			}
			if got := tr.States()[0].CircuitOpen; got != tc.wantOpen {
				t.Errorf("CircuitOpen = %v, want %v", got, tc.wantOpen)
			}
			var oe *pace.OpenError
			req, _ := http.NewRequestWithContext(pace.WithKey(context.Background(), "token"), http.MethodGet, "http://api.github.invalid/user", nil)
			_, err := tr.RoundTrip(req)
			if got := errors.As(err, &oe); got != tc.wantOpen {
				t.Errorf("RoundTrip = %v, OpenError %v, want %v", err, got, tc.wantOpen)
			}
			if tc.wantOpen && strings.Contains(fmt.Sprint(err), "refused") {
				t.Errorf("OpenError = %q, should not repeat the upstream's error", err)
			}
		})
	}
}
