package claude

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/pace"
)

const testKey = "sk-ant-secret-test-key-0123456789"

var testSchema = map[string]any{
	"type":                 "object",
	"additionalProperties": false,
	"required":             []any{"kind", "labels", "summary"},
	"properties": map[string]any{
		"kind":    map[string]any{"type": "string", "enum": []any{"bug", "feature"}},
		"labels":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"summary": map[string]any{"type": "string"},
	},
}

// newTestClient starts a fake Messages API and returns a Client for it.
func newTestClient(t *testing.T, fopts fake.AnthropicOptions, copts Options) (*Client, *fake.Anthropic, *httptest.Server) {
	t.Helper()
	if fopts.APIKey == "" {
		fopts.APIKey = testKey
	}
	f := fake.NewAnthropic(fopts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	if copts.APIKey == "" {
		copts.APIKey = testKey
	}
	copts.BaseURL = srv.URL
	return New(copts), f, srv
}

func testRequest(system, prompt string) Request {
	return Request{Model: "claude-test-1", System: system, Prompt: prompt, Schema: testSchema, MaxTokens: 1024}
}

func TestComplete(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{Latency: 10 * time.Millisecond}, Options{})
	system := strings.Repeat("Triage issues for octo/repo. ", 150) // over the 1,024-token minimum a prefix needs to be cached
	res, err := c.Complete(context.Background(), testRequest(system, "Issue #7: crash on start"))
	if err != nil {
		t.Fatalf("Complete() error = %v", err)
	}

	var answer struct {
		Kind    string   `json:"kind"`
		Labels  []string `json:"labels"`
		Summary string   `json:"summary"`
	}
	if err := json.Unmarshal(res.JSON, &answer); err != nil {
		t.Fatalf("Complete().JSON = %s: %v", res.JSON, err)
	}
	if answer.Kind != "bug" || len(answer.Labels) != 1 || answer.Summary == "" {
		t.Errorf("Complete() answer = %+v, want kind bug, one label, a summary", answer)
	}
	if res.Model != "claude-test-1" || res.StopReason != "end_turn" || !strings.HasPrefix(res.RequestID, "req_") {
		t.Errorf("Complete() model, stop, request id = %q, %q, %q, want claude-test-1, end_turn, req_…", res.Model, res.StopReason, res.RequestID)
	}
	if res.Latency < 10*time.Millisecond {
		t.Errorf("Complete().Latency = %v, want >= 10ms", res.Latency)
	}
	wantUsage := Usage{
		InputTokens:              int64(len("Issue #7: crash on start") / 4),
		OutputTokens:             int64(len(res.JSON) / 4),
		CacheCreationInputTokens: int64(len(system) / 4),
	}
	if res.Usage != wantUsage {
		t.Errorf("Complete().Usage = %+v, want %+v", res.Usage, wantUsage)
	}

	reqs := f.Requests()
	if len(reqs) != 1 || reqs[0].System != system || reqs[0].Prompt != "Issue #7: crash on start" || reqs[0].MaxTokens != 1024 || reqs[0].Schema == nil {
		t.Errorf("fake saw %+v, want the request sent", reqs)
	}

}

func TestCompleteCache(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestClient(t, fake.AnthropicOptions{}, Options{})
	system := strings.Repeat("stable instructions ", 250) // over the 1,024-token minimum a prefix needs to be cached
	first, err := c.Complete(context.Background(), testRequest(system, "event one"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Complete(context.Background(), testRequest(system, "event two"))
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len(system) / 4)
	if first.Usage.CacheCreationInputTokens != want || first.Usage.CacheReadInputTokens != 0 {
		t.Errorf("first call usage = %+v, want %d cache creation tokens", first.Usage, want)
	}
	if second.Usage.CacheReadInputTokens != want || second.Usage.CacheCreationInputTokens != 0 {
		t.Errorf("second call usage = %+v, want %d cache read tokens", second.Usage, want)
	}
}

func TestCompleteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		key           string
		fail          func(*fake.Anthropic)
		wantStatus    int
		wantType      string
		wantTemporary bool
		wantRetry     time.Duration
	}{
		{"rate limited", "", func(f *fake.Anthropic) { f.FailNext(429, "rate_limit_error", 1, 3*time.Second) }, 429, "rate_limit_error", true, 3 * time.Second},
		{"overloaded", "", func(f *fake.Anthropic) { f.FailNext(529, "overloaded_error", 1, 0) }, 529, "overloaded_error", true, 0},
		{"api error", "", func(f *fake.Anthropic) { f.FailNext(500, "api_error", 1, 0) }, 500, "api_error", true, 0},
		{"bad gateway", "", func(f *fake.Anthropic) { f.FailNext(502, "api_error", 1, 0) }, 502, "api_error", true, 0},
		{"wrong key", "sk-ant-wrong-key", nil, 401, "authentication_error", false, 0},
		{"bad request", "", func(f *fake.Anthropic) { f.FailNext(400, "invalid_request_error", 1, 0) }, 400, "invalid_request_error", false, 0},
		{"forbidden", "", func(f *fake.Anthropic) { f.FailNext(403, "permission_error", 1, 0) }, 403, "permission_error", false, 0},
		{"not found", "", func(f *fake.Anthropic) { f.FailNext(404, "not_found_error", 1, 0) }, 404, "not_found_error", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f, _ := newTestClient(t, fake.AnthropicOptions{}, Options{APIKey: tt.key})
			if tt.fail != nil {
				tt.fail(f)
			}
			_, err := c.Complete(context.Background(), testRequest("system", "prompt"))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Complete() error = %v (%T), want *Error", err, err)
			}
			if e.Status != tt.wantStatus || e.Type != tt.wantType {
				t.Errorf("Complete() error = %d %q, want %d %q", e.Status, e.Type, tt.wantStatus, tt.wantType)
			}
			if got := e.Temporary(); got != tt.wantTemporary {
				t.Errorf("Complete() error %v: Temporary() = %v, want %v", e, got, tt.wantTemporary)
			}
			if e.RetryAfter != tt.wantRetry {
				t.Errorf("Complete() error RetryAfter = %v, want %v", e.RetryAfter, tt.wantRetry)
			}
			if e.Message == "" || !strings.HasPrefix(e.RequestID, "req_") {
				t.Errorf("Complete() error message, request id = %q, %q, want both set", e.Message, e.RequestID)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), tt.key) && tt.key != "" {
				t.Errorf("Complete() error = %q, contains the API key", err)
			}
		})
	}
}

// TestCompleteRateLimitedByFake checks that a 429 without retry-after still
// says how long to wait, from the rate-limit reset headers.
func TestCompleteRateLimitedByFake(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestClient(t, fake.AnthropicOptions{RequestsPerMinute: 1}, Options{})
	if _, err := c.Complete(context.Background(), testRequest("s", "p")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Complete(context.Background(), testRequest("s", "p"))
	var e *Error
	if !errors.As(err, &e) || e.Status != 429 || !e.Temporary() {
		t.Fatalf("Complete() error = %v, want a temporary 429", err)
	}
	if e.RetryAfter <= 0 || e.RetryAfter > time.Minute {
		t.Errorf("Complete() error RetryAfter = %v, want in (0, 1m]", e.RetryAfter)
	}
}

func TestCompleteInvalidOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		answer    any
		maxTokens int
	}{
		{"prose", "I think this is a bug.", 1024},
		{"array", json.RawMessage(`["bug"]`), 1024},
		{"null", json.RawMessage(`null`), 1024},
		{"truncated prose", strings.Repeat("word ", 200), 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, _ := newTestClient(t, fake.AnthropicOptions{
				Respond: func(fake.AnthropicRequest) (any, error) { return tt.answer, nil },
			}, Options{})
			req := testRequest("s", "p")
			req.MaxTokens = tt.maxTokens
			res, err := c.Complete(context.Background(), req)
			var e *Error
			if !errors.As(err, &e) || e.Type != TypeInvalidOutput || e.Status != 0 {
				t.Fatalf("Complete() error = %v, want %s", err, TypeInvalidOutput)
			}
			if e.Temporary() {
				t.Errorf("Complete() error %v: Temporary() = true, want false", e)
			}
			if res.JSON != nil || res.Usage.OutputTokens == 0 || res.RequestID == "" {
				t.Errorf("Complete() result = %+v, want no JSON but usage and request id", res)
			}
		})
	}
}

func TestCompleteNetworkError(t *testing.T) {
	t.Parallel()
	c, _, srv := newTestClient(t, fake.AnthropicOptions{}, Options{})
	srv.Close()
	_, err := c.Complete(context.Background(), testRequest("s", "p"))
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 || e.Type != TypeNetwork || !e.Temporary() {
		t.Fatalf("Complete() error = %v, want a temporary %s", err, TypeNetwork)
	}
	if e.Unanswered {
		t.Errorf("Complete() to a closed port: Unanswered = true, want false (nothing was sent, nothing billed)")
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("Complete() error = %q, contains the API key", err)
	}
}

// An answer lost on the way back (the connection dropped after the API ran
// the call) is Unanswered: the call may have been billed.
func TestCompleteAnswerLost(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{}, Options{})
	f.HangUpNext(1)
	_, err := c.Complete(context.Background(), testRequest("s", "p"))
	var e *Error
	if !errors.As(err, &e) || e.Type != TypeNetwork || !e.Unanswered {
		t.Fatalf("Complete() with the answer lost = %v, want an Unanswered %s", err, TypeNetwork)
	}
	if got := f.Usage()["claude-test-1"].Calls; got != 1 {
		t.Errorf("calls the fake billed = %d, want 1", got)
	}
}

func TestCompleteCanceled(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestClient(t, fake.AnthropicOptions{Latency: time.Second}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Complete(ctx, testRequest("s", "p"))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Complete() error = %v, want *Error wrapping context.DeadlineExceeded", err)
	}
	if !e.Unanswered {
		t.Errorf("Complete() given up while the API worked: Unanswered = false, want true (it may be billed)")
	}
}

// A 429 that asks for a day snoozes the job for at most an hour.
func TestRetryAfterIsCapped(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("retry-after", "86400")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}`))
	}))
	t.Cleanup(srv.Close)
	c := New(Options{APIKey: testKey, BaseURL: srv.URL})
	_, err := c.Complete(context.Background(), testRequest("s", "p"))
	var e *Error
	if !errors.As(err, &e) || e.RetryAfterDuration() != time.Hour {
		t.Errorf("Complete() = %v, want a rate limit that waits the cap, an hour", err)
	}
}

// TestErrorScrubsKey checks that a key echoed by the server never reaches
// an error string.
func TestErrorScrubsKey(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("request-id", "req_echo")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":"bad key ` + testKey + `"}}`))
	}))
	t.Cleanup(srv.Close)
	c := New(Options{APIKey: testKey, BaseURL: srv.URL})
	_, err := c.Complete(context.Background(), testRequest("s", "p"))
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Fatalf("Complete() error = %v, want an error without the API key", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Type != "authentication_error" || e.Temporary() {
		t.Errorf("Complete() error = %#v, want a permanent authentication_error", e)
	}
}

func TestCompleteInvalidRequest(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{}, Options{})
	tests := []struct {
		name   string
		mutate func(*Request)
	}{
		{"no model", func(r *Request) { r.Model = "" }},
		{"no max tokens", func(r *Request) { r.MaxTokens = 0 }},
		{"no prompt", func(r *Request) { r.Prompt = "" }},
		{"no schema", func(r *Request) { r.Schema = nil }},
		{"needs streaming", func(r *Request) { r.MaxTokens = 1_000_000 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := testRequest("s", "p")
			tt.mutate(&req)
			_, err := c.Complete(context.Background(), req)
			var e *Error
			if !errors.As(err, &e) || e.Type != TypeInvalidRequest || e.Temporary() {
				t.Errorf("Complete(%s) error = %v, want a permanent %s", tt.name, err, TypeInvalidRequest)
			}
		})
	}
	if got := f.Calls(); got != 0 {
		t.Errorf("fake Calls() = %d, want 0: invalid requests must not be sent", got)
	}
}

func TestCompleteNoSystem(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{}, Options{})
	res, err := c.Complete(context.Background(), testRequest("", "just a prompt"))
	if err != nil {
		t.Fatalf("Complete() error = %v", err)
	}
	if res.Usage.CacheCreationInputTokens != 0 || f.Requests()[0].System != "" {
		t.Errorf("Complete() without system: usage %+v, fake saw system %q, want no cache and no system", res.Usage, f.Requests()[0].System)
	}
}

// A call that finds no free slot within SlotWait is not made: it says how
// long to wait, so that its job snoozes instead of timing out.
func TestSlotWaitSnoozes(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{Latency: time.Second}, Options{MaxConcurrency: 1, SlotWait: 50 * time.Millisecond})
	held := make(chan error, 1)
	go func() {
		_, err := c.Complete(context.Background(), testRequest("s", "p"))
		held <- err
	}()
	for f.MaxInFlight() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := c.Complete(context.Background(), testRequest("s", "p"))
	var wait *pace.WaitError
	var ce *Error
	if !errors.As(err, &wait) || !errors.As(err, &ce) || ce.Unanswered || ce.RetryAfterDuration() < 50*time.Millisecond {
		t.Errorf("second call with the only slot taken = %v, want a wait of 50ms, nothing sent", err)
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(); got != 1 {
		t.Errorf("fake saw %d calls, want 1", got)
	}
}

func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3, 0} {
		want := n
		if want == 0 {
			want = DefaultMaxConcurrency
		}
		c, f, _ := newTestClient(t, fake.AnthropicOptions{Latency: 30 * time.Millisecond}, Options{MaxConcurrency: n})
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Go(func() {
				if _, err := c.Complete(context.Background(), testRequest("s", "p")); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("MaxConcurrency %d: Complete() error = %v", n, err)
		}
		if got := f.MaxInFlight(); got > want || got < 1 {
			t.Errorf("MaxConcurrency %d: fake saw %d in flight, want 1..%d", n, got, want)
		}
		if got := f.Calls(); got != 20 {
			t.Errorf("MaxConcurrency %d: fake Calls() = %d, want 20", n, got)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	reset := now.Add(42 * time.Second).Format(time.RFC3339)
	later := now.Add(90 * time.Second).Format(time.RFC3339)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"ms", map[string]string{"retry-after-ms": "1500", "retry-after": "9"}, 1500 * time.Millisecond},
		{"seconds", map[string]string{"retry-after": "3"}, 3 * time.Second},
		{"http date", map[string]string{"retry-after": now.Add(10 * time.Second).Format(http.TimeFormat)}, 10 * time.Second},
		{"garbage", map[string]string{"retry-after": "soon"}, 0},
		{"requests exhausted", map[string]string{
			"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": reset,
		}, 42 * time.Second},
		{"tokens exhausted, latest reset wins", map[string]string{
			"anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": reset,
			"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": later,
		}, 90 * time.Second},
		{"remaining left", map[string]string{
			"anthropic-ratelimit-requests-remaining": "5", "anthropic-ratelimit-requests-reset": reset,
		}, 0},
		{"reset in the past", map[string]string{
			"anthropic-ratelimit-tokens-remaining": "0", "anthropic-ratelimit-tokens-reset": now.Add(-time.Minute).Format(time.RFC3339),
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter(%v) = %v, want %v", tt.headers, got, tt.want)
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		typ    string
		want   bool
	}{
		{0, TypeNetwork, true},
		{0, TypeInvalidOutput, false},
		{0, TypeInvalidRequest, false},
		// Batched requests that failed have no status: their type decides.
		{0, "api_error", true},
		{0, "overloaded_error", true},
		{0, TypeBatchExpired, true},
		{0, TypeBatchCanceled, true},
		{0, "authentication_error", false},
		{0, "permission_error", false},
		{0, "not_found_error", false},
		{0, "request_too_large", false},
		{400, "invalid_request_error", false},
		{401, "authentication_error", false},
		{403, "permission_error", false},
		{404, "not_found_error", false},
		{408, "timeout_error", true},
		{409, "conflict_error", true},
		{413, "request_too_large", false},
		{422, "invalid_request_error", false},
		{429, "rate_limit_error", true},
		{500, "api_error", true},
		{502, "api_error", true},
		{503, "api_error", true},
		{504, "timeout_error", true},
		{529, "overloaded_error", true},
	}
	for _, tt := range tests {
		e := &Error{Status: tt.status, Type: tt.typ}
		if got := e.Temporary(); got != tt.want {
			t.Errorf("(&Error{%d, %q}).Temporary() = %v, want %v", tt.status, tt.typ, got, tt.want)
		}
	}
}
