package pace

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func header(kv ...string) http.Header {
	h := make(http.Header)
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// obsString formats observations for comparison, resets in UTC.
func obsString(obs ...observation) string {
	var b strings.Builder
	for _, o := range obs {
		fmt.Fprintf(&b, "{%s %g/%g reset %s ±%v}", o.name, o.remaining, o.limit, o.reset.UTC().Format(time.RFC3339Nano), o.resolution)
	}
	return b.String()
}

func TestParseAnthropic(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 1, 5, 12, 0, 42, 0, time.UTC)
	tests := []struct {
		name string
		h    http.Header
		want []observation
	}{
		{
			name: "all buckets",
			h: header(
				"anthropic-ratelimit-requests-limit", "50",
				"anthropic-ratelimit-requests-remaining", "49",
				"anthropic-ratelimit-requests-reset", "2026-01-05T12:00:42Z",
				"anthropic-ratelimit-tokens-limit", "480000",
				"anthropic-ratelimit-tokens-remaining", "479000",
				"anthropic-ratelimit-tokens-reset", "2026-01-05T12:00:42.250Z",
				"anthropic-ratelimit-input-tokens-limit", "400000",
				"anthropic-ratelimit-input-tokens-remaining", "399000",
				"anthropic-ratelimit-input-tokens-reset", "2026-01-05T13:00:42+01:00",
				"anthropic-ratelimit-output-tokens-limit", "80000",
				"anthropic-ratelimit-output-tokens-remaining", "80000",
				"anthropic-ratelimit-output-tokens-reset", "2026-01-05T12:00:42Z",
			),
			want: []observation{
				{name: "requests", limit: 50, remaining: 49, reset: reset, resolution: time.Second},
				{name: "tokens", limit: 480000, remaining: 479000, reset: reset.Add(250 * time.Millisecond)},
				{name: "input-tokens", limit: 400000, remaining: 399000, reset: reset, resolution: time.Second},
				{name: "output-tokens", limit: 80000, remaining: 80000, reset: reset, resolution: time.Second},
			},
		},
		{
			name: "no reset",
			h:    header("anthropic-ratelimit-requests-limit", "50", "anthropic-ratelimit-requests-remaining", "0"),
			want: []observation{{name: "requests", limit: 50, remaining: 0}},
		},
		{
			name: "garbage skipped",
			h: header(
				"anthropic-ratelimit-requests-limit", "fifty",
				"anthropic-ratelimit-requests-remaining", "49",
				"anthropic-ratelimit-tokens-limit", "1000",
				"anthropic-ratelimit-tokens-remaining", "-3",
				"anthropic-ratelimit-input-tokens-limit", "1000",
				"anthropic-ratelimit-input-tokens-remaining", "10",
				"anthropic-ratelimit-input-tokens-reset", "yesterday",
			),
			want: []observation{{name: "input-tokens", limit: 1000, remaining: 10}},
		},
		{name: "none", h: header("x-request-id", "req_1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := parseAnthropic(tc.h)
			if g, w := obsString(got...), obsString(tc.want...); g != w {
				t.Errorf("parseAnthropic(%v) = %s, want %s", tc.h, g, w)
			}
		})
	}
}

func TestParseGitHub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.Header
		want observation
		ok   bool
	}{
		{
			name: "core",
			h: header("X-RateLimit-Limit", "5000", "X-RateLimit-Remaining", "4987", "X-RateLimit-Used", "13",
				"X-RateLimit-Reset", "1767614400", "X-RateLimit-Resource", "core"),
			want: observation{name: "core", limit: 5000, remaining: 4987, reset: time.Unix(1767614400, 0)},
			ok:   true,
		},
		{
			name: "search, remaining from used",
			h:    header("X-RateLimit-Limit", "30", "X-RateLimit-Used", "12", "X-RateLimit-Reset", "1767614400", "X-RateLimit-Resource", "search"),
			want: observation{name: "search", limit: 30, remaining: 18, reset: time.Unix(1767614400, 0)},
			ok:   true,
		},
		{
			name: "no resource is core",
			h:    header("X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1767614400"),
			want: observation{name: "core", limit: 60, remaining: 0, reset: time.Unix(1767614400, 0)},
			ok:   true,
		},
		{name: "none", h: header("Retry-After", "60")},
		{name: "no limit", h: header("X-RateLimit-Remaining", "10")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseGitHub(tc.h)
			if g, w := obsString(got), obsString(tc.want); ok != tc.ok || g != w {
				t.Errorf("parseGitHub(%v) = %s, %v, want %s, %v", tc.h, g, ok, w, tc.ok)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{"seconds", header("Retry-After", "7"), 7 * time.Second, true},
		{"fractional seconds", header("Retry-After", "1.5"), 1500 * time.Millisecond, true},
		{"zero", header("Retry-After", "0"), 0, true},
		{"HTTP date", header("Retry-After", "Mon, 05 Jan 2026 12:00:42 GMT"), 42 * time.Second, true},
		{"HTTP date in the past", header("Retry-After", "Mon, 05 Jan 2026 11:59:00 GMT"), 0, true},
		{"milliseconds first", header("Retry-After", "2", "Retry-After-Ms", "1234.5"), 1234500 * time.Microsecond, true},
		{"bad milliseconds fall back", header("Retry-After", "2", "Retry-After-Ms", "soon"), 2 * time.Second, true},
		{"a day is capped", header("Retry-After", "86400"), MaxRetryAfter, true},
		{"a day in milliseconds is capped", header("Retry-After-Ms", "86400000"), MaxRetryAfter, true},
		{"a date next year is capped", header("Retry-After", "Tue, 05 Jan 2027 12:00:00 GMT"), MaxRetryAfter, true},
		{"huge", header("Retry-After", "99999999999999999999"), MaxRetryAfter, true},
		{"infinite", header("Retry-After", "+Inf"), MaxRetryAfter, true},
		{"not a number", header("Retry-After", "NaN"), 0, false},
		{"negative", header("Retry-After", "-5"), 0, false},
		{"garbage", header("Retry-After", "later"), 0, false},
		{"absent", header(), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RetryAfter(tc.h, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("RetryAfter(%v) = %v, %v, want %v, %v", tc.h, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestOpenErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		retry time.Duration
		want  string
	}{
		{7*time.Second + 200*time.Millisecond, "anthropic (sonnet): circuit open after 5 consecutive failures; retry in 8s"},
		{90 * time.Second, "anthropic (sonnet): circuit open after 5 consecutive failures; retry in 1m30s"},
		{250*time.Millisecond + 10, "anthropic (sonnet): circuit open after 5 consecutive failures; retry in 251ms"},
	}
	for _, tc := range tests {
		e := &OpenError{Upstream: "anthropic", Key: "sonnet", Failures: 5, RetryAfter: tc.retry}
		if got := e.Error(); got != tc.want {
			t.Errorf("OpenError{RetryAfter: %v}.Error() = %q, want %q", tc.retry, got, tc.want)
		}
	}
}

// TestWriteWindowBoundary: a write exactly 60 s after the write it would
// be the 81st to is allowed, one nanosecond earlier it is not.
func TestWriteWindowBoundary(t *testing.T) {
	t.Parallel()
	opts := &Options{WritesPerMinute: 2, WritesPerHour: 3}
	t0 := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	ks := &keyState{buckets: map[string]*bucket{}, inflight: map[uint64]struct{}{}}
	ks.begin(t0, true, "", false, opts)
	ks.begin(t0.Add(time.Second), true, "", false, opts)
	tests := []struct {
		at   time.Time
		want time.Duration
	}{
		{t0.Add(time.Minute - 1), 1},
		{t0.Add(time.Minute), 0},
	}
	for _, tc := range tests {
		if got := ks.nextWrite(opts).Sub(tc.at); max(got, 0) != tc.want {
			t.Errorf("wait at %v = %v, want %v", tc.at.Sub(t0), got, tc.want)
		}
	}
	ks.begin(t0.Add(time.Minute), true, "", false, opts)
	// The hour holds three: the fourth waits for the first to leave it.
	if got, want := ks.nextWrite(opts), t0.Add(time.Hour); !got.Equal(want) {
		t.Errorf("next write = +%v, want +%v", got.Sub(t0), want.Sub(t0))
	}
}
