package pace_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/pace"
)

// newTransport returns a Transport for upstream over a real HTTP
// transport, on clock.
func newTransport(t *testing.T, clock *fakeClock, opts pace.Options) *pace.Transport {
	t.Helper()
	base := &http.Transport{MaxIdleConnsPerHost: 256}
	t.Cleanup(base.CloseIdleConnections)
	if clock != nil {
		opts.Now, opts.Sleep = clock.Now, clock.Sleep
	}
	return pace.NewTransport(base, opts)
}

// send makes one request with key through rt, reads and closes the
// response body, and returns the status.
func send(ctx context.Context, rt http.RoundTripper, key, method, url string) (int, error) {
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader(`{"body":"hello"}`)
	}
	req, err := http.NewRequestWithContext(pace.WithKey(ctx, key), method, url, body)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// mustSend is send that fails the test on an error.
func mustSend(t *testing.T, rt http.RoundTripper, key, method, url string) int {
	t.Helper()
	status, err := send(context.Background(), rt, key, method, url)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return status
}

func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// githubServer speaks GitHub's primary rate limit: limit requests per
// hour-long window from epoch, the real x-ratelimit-* headers, 403 when
// spent. It records the (fake) start time of every request by method.
type githubServer struct {
	clock *fakeClock
	limit int

	mu     sync.Mutex
	window int
	used   int
	starts map[string][]time.Time
}

func (s *githubServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.clock.Now()
	s.mu.Lock()
	if s.starts == nil {
		s.starts = make(map[string][]time.Time)
	}
	s.starts[r.Method] = append(s.starts[r.Method], now)
	if win := int(now.Sub(epoch) / time.Hour); win != s.window {
		s.window, s.used = win, 0
	}
	spent := s.used >= s.limit
	if !spent {
		s.used++
	}
	remaining, reset := s.limit-s.used, epoch.Add(time.Duration(s.window+1)*time.Hour)
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(s.limit-remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	h.Set("Content-Type", "application/json")
	if spent {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"API rate limit exceeded"}`)
		return
	}
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusCreated)
	}
	io.WriteString(w, `{"id":1}`)
}

func (s *githubServer) Starts(method string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts[method])
}

// maxInWindow is the most of the sorted times that fall in any half-open
// window of length span.
func maxInWindow(times []time.Time, span time.Duration) int {
	most, lo := 0, 0
	for hi := range times {
		for !times[hi].Before(times[lo].Add(span)) {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

func TestWriteWindow(t *testing.T) {
	t.Parallel()
	clock := newClock()
	gh := &githubServer{clock: clock, limit: 5000}
	srv := newServer(t, gh.ServeHTTP)
	tr := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 80, WritesPerHour: 500})

	const goroutines, each = 200, 3
	clock.run(goroutines, func(int) {
		for range each {
			status, err := send(context.Background(), tr, "installation-1", http.MethodPost, srv.URL+"/repos/o/r/issues/1/comments")
			if err != nil || status != http.StatusCreated {
				t.Errorf("POST = %d, %v, want 201", status, err)
				return
			}
		}
	})

	starts := gh.Starts(http.MethodPost)
	slices.SortFunc(starts, time.Time.Compare)
	if got, want := len(starts), goroutines*each; got != want {
		t.Fatalf("writes completed = %d, want %d", got, want)
	}
	if got := maxInWindow(starts, time.Minute); got > 80 {
		t.Errorf("most writes in a 60 s window = %d, want <= 80", got)
	}
	if got := maxInWindow(starts, time.Hour); got > 500 {
		t.Errorf("most writes in an hour = %d, want <= 500", got)
	}
	// The limits are used, not just respected: 500 writes in the first
	// hour at 80 a minute, then the rest an hour after the first ones.
	if got, want := starts[499].Sub(epoch), 6*time.Minute; got != want {
		t.Errorf("start of write 500 = %v, want %v", got, want)
	}
	if got, want := starts[500].Sub(epoch), time.Hour; got != want {
		t.Errorf("start of write 501 = %v, want %v", got, want)
	}

}

func TestWritesDoNotHoldReads(t *testing.T) {
	t.Parallel()
	clock := newClock()
	gh := &githubServer{clock: clock, limit: 5000}
	srv := newServer(t, gh.ServeHTTP)
	tr := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 2})

	mustSend(t, tr, "installation-1", http.MethodPost, srv.URL+"/repos/o/r/issues")
	clock.Advance(10 * time.Second)
	mustSend(t, tr, "installation-1", http.MethodDelete, srv.URL+"/repos/o/r/labels/x")
	before := clock.Now()
	mustSend(t, tr, "installation-1", http.MethodGet, srv.URL+"/repos/o/r")
	if got := clock.Since(before); got != 0 {
		t.Errorf("GET waited %v with the write window full, want 0", got)
	}
	// Another key has its own window.
	mustSend(t, tr, "installation-2", http.MethodPut, srv.URL+"/repos/o/r/topics")
	if got := clock.Since(before); got != 0 {
		t.Errorf("PUT with another key waited %v, want 0", got)
	}
	// The first write leaves the window 60 s after it started.
	mustSend(t, tr, "installation-1", http.MethodPost, srv.URL+"/repos/o/r/issues")
	if got, want := clock.Since(before), 50*time.Second; got != want {
		t.Errorf("POST with the write window full waited %v, want %v", got, want)
	}
}

func TestWriteSpacing(t *testing.T) {
	t.Parallel()
	clock := newClock()
	gh := &githubServer{clock: clock, limit: 5000}
	srv := newServer(t, gh.ServeHTTP)
	tr := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WriteSpacing: 2 * time.Second})

	clock.run(5, func(int) {
		for range 4 {
			if _, err := send(context.Background(), tr, "token", http.MethodPatch, srv.URL+"/repos/o/r/issues/1"); err != nil {
				t.Errorf("PATCH: %v", err)
			}
		}
	})
	starts := gh.Starts(http.MethodPatch)
	slices.SortFunc(starts, time.Time.Compare)
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 2*time.Second {
			t.Errorf("gap between writes %d and %d = %v, want >= 2s", i-1, i, gap)
		}
	}
	if got, want := starts[len(starts)-1].Sub(starts[0]), 19*2*time.Second; got != want {
		t.Errorf("first to last of 20 writes = %v, want %v", got, want)
	}
}

// tokenBucketServer is one of Anthropic's limits: a token bucket of
// capacity refilled continuously at rate per second, from which every
// request takes cost, with the real anthropic-ratelimit-{bucket}-*
// headers (reset in whole seconds) and 429 with retry-after beyond it.
type tokenBucketServer struct {
	clock          *fakeClock
	bucket         string // default "requests"
	capacity, rate float64
	cost           float64 // default 1
	// reset formats the time the bucket is full; default whole seconds,
	// truncated.
	reset func(time.Time) string

	mu     sync.Mutex
	tokens float64
	at     time.Time
	ok     int
}

func (s *tokenBucketServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, cost := cmp.Or(s.bucket, "requests"), cmp.Or(s.cost, 1)
	now := s.clock.Now()
	s.mu.Lock()
	if s.at.IsZero() {
		s.tokens, s.at = s.capacity, now
	}
	s.tokens = min(s.capacity, s.tokens+s.rate*now.Sub(s.at).Seconds())
	s.at = now
	allowed := s.tokens >= cost
	if allowed {
		s.tokens -= cost
		s.ok++
	}
	tokens := s.tokens
	s.mu.Unlock()

	full := now.Add(time.Duration((s.capacity - tokens) / s.rate * float64(time.Second)))
	h := w.Header()
	h.Set("anthropic-ratelimit-"+bucket+"-limit", strconv.Itoa(int(s.capacity)))
	h.Set("anthropic-ratelimit-"+bucket+"-remaining", strconv.Itoa(int(math.Floor(tokens))))
	reset := s.reset
	if reset == nil {
		reset = truncated
	}
	h.Set("anthropic-ratelimit-"+bucket+"-reset", reset(full))
	h.Set("Content-Type", "application/json")
	if !allowed {
		wait := (cost - tokens) / s.rate
		h.Set("retry-after", strconv.Itoa(int(math.Ceil(wait))))
		h.Set("retry-after-ms", strconv.FormatFloat(math.Ceil(wait*1000), 'f', 0, 64))
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"rate limit exceeded"}}`)
		return
	}
	io.WriteString(w, `{"type":"message","content":[{"type":"text","text":"ok"}]}`)
}

// Ways to send a bucket's reset.
var (
	truncated = func(t time.Time) string { return t.Truncate(time.Second).Format(time.RFC3339) }
	roundedUp = func(t time.Time) string {
		if r := t.Truncate(time.Second); r.Before(t) {
			t = r.Add(time.Second)
		}
		return t.Format(time.RFC3339)
	}
	exact = func(t time.Time) string { return t.Format(time.RFC3339Nano) }
)

func (s *tokenBucketServer) OK() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok
}

// hammer sends total requests to url from goroutines workers on clock,
// each retried until it is answered 200, and returns how many answers
// were 429.
func hammer(t *testing.T, clock *fakeClock, rt http.RoundTripper, url string, total, goroutines int) int {
	t.Helper()
	var left atomic.Int64
	left.Store(int64(total))
	var answered429 atomic.Int64
	clock.run(goroutines, func(int) {
		for left.Add(-1) >= 0 {
			for {
				status, err := send(context.Background(), rt, "sonnet", http.MethodPost, url)
				if err != nil {
					t.Errorf("POST %s: %v", url, err)
					return
				}
				if status == http.StatusOK {
					break
				}
				if status != http.StatusTooManyRequests {
					t.Errorf("POST %s = %d, want 200 or 429", url, status)
					return
				}
				answered429.Add(1) // the caller retries
			}
		}
	})
	return int(answered429.Load())
}

func TestAnthropicPacing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reset func(time.Time) string
	}{
		{"reset truncated", truncated},
		{"reset rounded up", roundedUp},
		{"reset exact", exact},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			api := &tokenBucketServer{clock: clock, capacity: 600, rate: 10, reset: tc.reset}
			srv := newServer(t, api.ServeHTTP)
			tr := newTransport(t, clock, pace.Options{Upstream: pace.Anthropic})

			const total = 1200
			answered429 := hammer(t, clock, tr, srv.URL+"/v1/messages", total, 50)

			elapsed := clock.Since(epoch)
			t.Logf("%d requests in %v of fake time, %d answered 429", total, elapsed, answered429)
			if got, want := api.OK(), total; got != want {
				t.Errorf("requests answered 200 = %d, want %d", got, want)
			}
			// The least time the limit allows is 60 s: 600 at once, 600
			// more at 10/s.
			if limit := 75 * time.Second; elapsed > limit {
				t.Errorf("fake time for %d requests = %v, want <= %v", total, elapsed, limit)
			}
			// The cost is learned from answers, so a few early requests may
			// overshoot: allow 2% (1,500 runs never saw more than 1%).
			if got, limit := answered429, total/50; got > limit {
				t.Errorf("answers 429 = %d, want <= %d", got, limit)
			}
		})
	}
}

// TestAnthropicTokenPacing: the cost of a request in tokens is unknown
// before it is answered; the Transport infers it from the answers.
func TestAnthropicTokenPacing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		reset func(time.Time) string
	}{
		{"reset truncated", truncated},
		{"reset rounded up", roundedUp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			api := &tokenBucketServer{clock: clock, bucket: "input-tokens", capacity: 20000, rate: 20000 / 60.0, cost: 500, reset: tc.reset}
			srv := newServer(t, api.ServeHTTP)
			tr := newTransport(t, clock, pace.Options{Upstream: pace.Anthropic})

			const total = 200
			answered429 := hammer(t, clock, tr, srv.URL+"/v1/messages", total, 20)

			elapsed := clock.Since(epoch)
			t.Logf("%d requests in %v of fake time, %d answered 429", total, elapsed, answered429)
			// 40 at once, then one every 1.5 s: 240 s.
			if limit := 300 * time.Second; elapsed > limit {
				t.Errorf("fake time for %d requests = %v, want <= %v", total, elapsed, limit)
			}
			if got, limit := answered429, total/100; got > limit {
				t.Errorf("answers 429 = %d, want <= %d", got, limit)
			}
		})
	}
}

func TestGitHubPrimaryLimit(t *testing.T) {
	t.Parallel()
	clock := newClock()
	var calls atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		remaining, reset := 0, epoch.Add(30*time.Second)
		if n > 1 {
			remaining, reset = 4999, reset.Add(time.Hour)
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
	})
	tr := newTransport(t, clock, pace.Options{Upstream: pace.GitHub})

	mustSend(t, tr, "installation-1", http.MethodGet, srv.URL+"/repos/o/r")
	before := clock.Now()
	mustSend(t, tr, "installation-2", http.MethodGet, srv.URL+"/repos/o/r")
	if got := clock.Since(before); got != 0 {
		t.Errorf("request with another key waited %v, want 0", got)
	}
	mustSend(t, tr, "installation-1", http.MethodGet, srv.URL+"/repos/o/r")
	if got, want := clock.Since(before), 30*time.Second; got != want {
		t.Errorf("request after remaining 0 waited %v, want %v (until reset)", got, want)
	}
	// The answer after the reset starts a new window.
	st := tr.States()
	if got := st[0].Buckets[0]; got.Name != "core" || got.Remaining != 4999 {
		t.Errorf("bucket after reset = %+v, want core with 4999 remaining", got)
	}
}

func TestGitHubSpreadsLastTenPercent(t *testing.T) {
	t.Parallel()
	clock := newClock()
	var mu sync.Mutex
	remaining := 100
	var starts []time.Time
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		remaining--
		starts = append(starts, clock.Now())
		n := remaining
		mu.Unlock()
		h := w.Header()
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", strconv.Itoa(n))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(epoch.Add(1000*time.Second).Unix(), 10))
	})
	tr := newTransport(t, clock, pace.Options{Upstream: pace.GitHub})

	for range 4 {
		mustSend(t, tr, "token", http.MethodGet, srv.URL+"/repos/o/r/pulls/1")
	}
	// 99 left for 1000 s: one every ~10 s, not all at once.
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 9*time.Second || gap > 11*time.Second {
			t.Errorf("gap between requests %d and %d = %v, want about 10s", i-1, i, gap)
		}
	}
	// A resource with room is not held back by one that is nearly spent.
	before := clock.Now()
	mustSend(t, tr, "token", http.MethodGet, srv.URL+"/rate_limit")
	if got := clock.Since(before); got != 0 {
		t.Errorf("GET /rate_limit waited %v, want 0", got)
	}
}

func TestRateLimitPauses(t *testing.T) {
	t.Parallel()
	reset := func(d time.Duration) string { return epoch.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name     string
		upstream string
		status   int
		header   map[string]string
		want     time.Duration // wait of the next request
	}{
		{
			name: "anthropic 429, bucket empty", upstream: pace.Anthropic, status: 429,
			header: map[string]string{
				"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
				"anthropic-ratelimit-requests-reset": reset(60 * time.Second), "retry-after": "30",
			},
			want: 30 * time.Second,
		},
		{
			name: "anthropic 429, retry-after-ms", upstream: pace.Anthropic, status: 429,
			header: map[string]string{"retry-after": "3", "retry-after-ms": "2500"},
			want:   2500 * time.Millisecond,
		},
		{
			name: "anthropic 429, no rate-limit headers", upstream: pace.Anthropic, status: 429,
			header: map[string]string{"retry-after": "30"},
			want:   30 * time.Second,
		},
		{
			name: "anthropic 429, every bucket has room", upstream: pace.Anthropic, status: 429,
			header: map[string]string{
				"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "20",
				"anthropic-ratelimit-requests-reset": reset(36 * time.Second), "retry-after": "30",
			},
			want: time.Second,
		},
		{
			name: "anthropic 200", upstream: pace.Anthropic, status: 200,
			header: map[string]string{"retry-after": "30"},
			want:   0,
		},
		{
			name: "github 403 primary", upstream: pace.GitHub, status: 403,
			header: map[string]string{
				"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
				"X-RateLimit-Reset": strconv.FormatInt(epoch.Add(40*time.Second).Unix(), 10),
			},
			want: 40 * time.Second,
		},
		{
			name: "github 403 secondary", upstream: pace.GitHub, status: 403,
			header: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4000", "Retry-After": "60"},
			want:   60 * time.Second,
		},
		{
			name: "github 429 secondary, HTTP date", upstream: pace.GitHub, status: 429,
			header: map[string]string{"Retry-After": epoch.Add(45 * time.Second).Format(http.TimeFormat)},
			want:   45 * time.Second,
		},
		{
			name: "github 429 without retry-after", upstream: pace.GitHub, status: 429,
			want: time.Minute,
		},
		{
			name: "github 403 forbidden", upstream: pace.GitHub, status: 403,
			header: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4000"},
			want:   0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock()
			var calls atomic.Int64
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					return
				}
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
			})
			tr := newTransport(t, clock, pace.Options{Upstream: tc.upstream})
			mustSend(t, tr, "k", http.MethodGet, srv.URL+"/x")
			before := clock.Now()
			mustSend(t, tr, "k", http.MethodGet, srv.URL+"/x")
			if got := clock.Since(before); got != tc.want {
				t.Errorf("wait after %d %v = %v, want %v", tc.status, tc.header, got, tc.want)
			}
		})
	}
}

func TestLearnedState(t *testing.T) {
	t.Parallel()
	clock := newClock()
	anthropic := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("anthropic-ratelimit-requests-limit", "50")
		h.Set("anthropic-ratelimit-requests-remaining", "49")
		h.Set("anthropic-ratelimit-requests-reset", epoch.Add(1200*time.Millisecond).Format(time.RFC3339Nano))
		h.Set("anthropic-ratelimit-input-tokens-limit", "400000")
		h.Set("anthropic-ratelimit-input-tokens-remaining", "399000")
		h.Set("anthropic-ratelimit-input-tokens-reset", epoch.Add(time.Second).Format(time.RFC3339))
		h.Set("anthropic-ratelimit-output-tokens-limit", "80000")
		h.Set("anthropic-ratelimit-output-tokens-remaining", "80000")
		h.Set("anthropic-ratelimit-output-tokens-reset", epoch.Format(time.RFC3339))
	})
	github := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-RateLimit-Limit", "30")
		h.Set("X-RateLimit-Remaining", "29")
		h.Set("X-RateLimit-Used", "1")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(epoch.Add(60*time.Second).Unix(), 10))
		h.Set("X-RateLimit-Resource", "search")
	})
	at := newTransport(t, clock, pace.Options{Upstream: pace.Anthropic})
	gt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 80})
	mustSend(t, at, "sonnet", http.MethodPost, anthropic.URL+"/v1/messages")
	mustSend(t, gt, "token", http.MethodGet, github.URL+"/search/issues")

	got := fmt.Sprintf("%+v", at.States())
	want := fmt.Sprintf("%+v", []pace.State{{Key: "sonnet", Buckets: []pace.Bucket{
		// Short horizons: the rate is taken as the limit per minute.
		{Name: "input-tokens", Limit: 400000, Remaining: 399000, Reset: epoch.Add(150 * time.Millisecond)},
		{Name: "output-tokens", Limit: 80000, Remaining: 80000, Reset: epoch},
		{Name: "requests", Limit: 50, Remaining: 49, Reset: epoch.Add(1200 * time.Millisecond)},
	}}})
	if got != want {
		t.Errorf("anthropic States() = %s,\nwant %s", got, want)
	}
	got = fmt.Sprintf("%+v", gt.States())
	want = fmt.Sprintf("%+v", []pace.State{{Key: "token", Buckets: []pace.Bucket{
		{Name: "search", Limit: 30, Remaining: 29, Reset: epoch.Add(time.Minute)},
		{Name: "writes-minute", Limit: 80, Remaining: 80},
	}}})
	if got != want {
		t.Errorf("github States() = %s,\nwant %s", got, want)
	}
}
