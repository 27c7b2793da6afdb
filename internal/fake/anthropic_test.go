package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/hookwise/hookwise/internal/fake"
)

const anthTestKey = "sk-ant-test-key"

// anthTestSchema is a triage-like schema using the features the default
// responder supports.
var anthTestSchema = map[string]any{
	"type":                 "object",
	"additionalProperties": false,
	"required":             []any{"summary", "kind", "labels", "confidence", "duplicate", "related"},
	"properties": map[string]any{
		"summary":    map[string]any{"type": "string"},
		"kind":       map[string]any{"type": "string", "enum": []any{"bug", "feature", "question"}},
		"labels":     map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		"confidence": map[string]any{"type": "number"},
		"duplicate":  map[string]any{"type": "boolean"},
		"related":    map[string]any{"$ref": "#/$defs/ref"},
	},
	"$defs": map[string]any{
		"ref": map[string]any{"type": []any{"integer", "null"}},
	},
}

// anthServer starts the fake behind httptest and returns it and its URL.
func anthServer(t *testing.T, opts fake.AnthropicOptions) (*fake.Anthropic, string) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = anthTestKey
	}
	f := fake.NewAnthropic(opts)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// anthClock returns a settable clock starting at a whole second, for
// AnthropicOptions.Now.
func anthClock() (now func() time.Time, advance func(time.Duration)) {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now = func() time.Time { mu.Lock(); defer mu.Unlock(); return t }
	advance = func(d time.Duration) { mu.Lock(); defer mu.Unlock(); t = t.Add(d) }
	return now, advance
}

// anthSDK returns the official SDK client pointed at url.
func anthSDK(url, key string) *anthropic.Client {
	c := anthropic.NewClient(
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(key),
		option.WithBaseURL(url),
		option.WithMaxRetries(0),
	)
	return &c
}

func anthParams(system, prompt string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-test-1",
		MaxTokens: 1024,
		System: []anthropic.TextBlockParam{{
			Text:         system,
			CacheControl: anthropic.NewCacheControlEphemeralParam(),
		}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
		OutputConfig: anthropic.OutputConfigParam{
			Format: anthropic.JSONOutputFormatParam{Schema: anthTestSchema},
		},
	}
}

func TestAnthropicSDKMessage(t *testing.T) {
	t.Parallel()
	clock, _ := anthClock() // stopped, so the request bucket does not refill between calls
	f, url := anthServer(t, fake.AnthropicOptions{Now: clock})
	client := anthSDK(url, anthTestKey)
	system := strings.Repeat("You triage GitHub issues. ", 200) // 1300 tokens: long enough to cache
	prompt := "Issue #1: the build is broken on main."

	var resp *http.Response
	msg, err := client.Messages.New(context.Background(), anthParams(system, prompt), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("Messages.New() error = %v", err)
	}

	if msg.Type != "message" || msg.Role != "assistant" || msg.Model != "claude-test-1" || msg.StopReason != "end_turn" {
		t.Errorf("message = type %q role %q model %q stop %q, want message assistant claude-test-1 end_turn", msg.Type, msg.Role, msg.Model, msg.StopReason)
	}
	if !strings.HasPrefix(msg.ID, "msg_") {
		t.Errorf("message id = %q, want msg_ prefix", msg.ID)
	}
	if len(msg.Content) != 1 || msg.Content[0].Type != "text" {
		t.Fatalf("content = %+v, want one text block", msg.Content)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(msg.Content[0].Text), &got); err != nil {
		t.Fatalf("answer %q is not JSON: %v", msg.Content[0].Text, err)
	}
	want := map[string]any{
		"summary": "example", "kind": "bug", "labels": []any{"example"},
		"confidence": 1.0, "duplicate": false, "related": 1.0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answer = %v, want %v", got, want)
	}

	wantSystem := int64(len(system) / 4)
	if msg.Usage.CacheCreationInputTokens != wantSystem || msg.Usage.CacheReadInputTokens != 0 {
		t.Errorf("first call cache creation, read = %d, %d, want %d, 0", msg.Usage.CacheCreationInputTokens, msg.Usage.CacheReadInputTokens, wantSystem)
	}
	if msg.Usage.InputTokens != int64(len(prompt)/4) {
		t.Errorf("input tokens = %d, want %d", msg.Usage.InputTokens, len(prompt)/4)
	}
	if msg.Usage.OutputTokens < 1 {
		t.Errorf("output tokens = %d, want > 0", msg.Usage.OutputTokens)
	}

	if id := resp.Header.Get("request-id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("request-id header = %q, want req_ prefix", id)
	}
	for _, h := range []string{"requests", "tokens"} {
		prefix := "anthropic-ratelimit-" + h + "-"
		if resp.Header.Get(prefix+"limit") == "" || resp.Header.Get(prefix+"remaining") == "" {
			t.Errorf("%slimit/remaining missing from %v", prefix, resp.Header)
		}
		if _, err := time.Parse(time.RFC3339, resp.Header.Get(prefix+"reset")); err != nil {
			t.Errorf("%sreset = %q, want RFC 3339: %v", prefix, resp.Header.Get(prefix+"reset"), err)
		}
	}

	// Same system prompt again: served from the cache.
	msg, err = client.Messages.New(context.Background(), anthParams(system, "Issue #2"), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("second Messages.New() error = %v", err)
	}
	if msg.Usage.CacheReadInputTokens != wantSystem || msg.Usage.CacheCreationInputTokens != 0 {
		t.Errorf("second call cache creation, read = %d, %d, want 0, %d", msg.Usage.CacheCreationInputTokens, msg.Usage.CacheReadInputTokens, wantSystem)
	}
	if got := resp.Header.Get("anthropic-ratelimit-requests-remaining"); got != "998" {
		t.Errorf("requests remaining after two calls = %q, want 998", got)
	}

	if got := f.Calls(); got != 2 {
		t.Errorf("Calls() = %d, want 2", got)
	}
	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("len(Requests()) = %d, want 2", len(reqs))
	}
	if reqs[0].Model != "claude-test-1" || reqs[0].System != system || reqs[0].Prompt != prompt || reqs[0].MaxTokens != 1024 {
		t.Errorf("Requests()[0] = %+v, want the request sent", reqs[0])
	}
	if !reflect.DeepEqual(reqs[0].Schema["required"], anthTestSchema["required"]) {
		t.Errorf("Requests()[0].Schema = %v, want the schema sent", reqs[0].Schema)
	}
}

func TestAnthropicSDKErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		key        string
		fail       func(*fake.Anthropic)
		wantStatus int
		wantType   string
		wantRetry  string
	}{
		{"wrong key", "sk-wrong", nil, 401, "authentication_error", ""},
		{"rate limited", anthTestKey, func(f *fake.Anthropic) { f.FailNext(429, "rate_limit_error", 1, 3*time.Second) }, 429, "rate_limit_error", "3"},
		{"rate limit rounded up", anthTestKey, func(f *fake.Anthropic) { f.FailNext(429, "", 1, 1500*time.Millisecond) }, 429, "rate_limit_error", "2"},
		{"overloaded", anthTestKey, func(f *fake.Anthropic) { f.FailNext(529, "overloaded_error", 1, 0) }, 529, "overloaded_error", ""},
		{"api error", anthTestKey, func(f *fake.Anthropic) { f.FailNext(500, "api_error", 1, 0) }, 500, "api_error", ""},
		{"injected 401", anthTestKey, func(f *fake.Anthropic) { f.FailNext(401, "authentication_error", 1, 0) }, 401, "authentication_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, url := anthServer(t, fake.AnthropicOptions{})
			if tt.fail != nil {
				tt.fail(f)
			}
			_, err := anthSDK(url, tt.key).Messages.New(context.Background(), anthParams("system", "prompt"))
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("Messages.New() error = %v, want *anthropic.Error", err)
			}
			if apiErr.StatusCode != tt.wantStatus || string(apiErr.Type()) != tt.wantType {
				t.Errorf("error = %d %q, want %d %q", apiErr.StatusCode, apiErr.Type(), tt.wantStatus, tt.wantType)
			}
			if apiErr.Message == "" || !strings.HasPrefix(apiErr.RequestID, "req_") {
				t.Errorf("error message, request id = %q, %q, want both set", apiErr.Message, apiErr.RequestID)
			}
			if got := apiErr.Response.Header.Get("retry-after"); got != tt.wantRetry {
				t.Errorf("retry-after = %q, want %q", got, tt.wantRetry)
			}
			if got := f.Calls(); got != 0 {
				t.Errorf("Calls() = %d, want 0", got)
			}
			// The failure is used up: the next call succeeds.
			if tt.key == anthTestKey {
				if _, err := anthSDK(url, tt.key).Messages.New(context.Background(), anthParams("system", "prompt")); err != nil {
					t.Errorf("call after the failure: error = %v, want nil", err)
				}
			}
		})
	}
}

func TestAnthropicFailNextCount(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{})
	f.FailNext(529, "overloaded_error", 2, 0)
	client := anthSDK(url, anthTestKey)
	for i, wantErr := range []bool{true, true, false} {
		_, err := client.Messages.New(context.Background(), anthParams("s", "p"))
		if (err != nil) != wantErr {
			t.Errorf("call %d: error = %v, want error %v", i, err, wantErr)
		}
	}
}

func TestAnthropicSetAPIKey(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{})
	client := anthSDK(url, "sk-new")
	if _, err := client.Messages.New(context.Background(), anthParams("s", "p")); err == nil {
		t.Fatal("call with an unknown key: error = nil, want 401")
	}
	f.SetAPIKey("sk-new")
	if _, err := client.Messages.New(context.Background(), anthParams("s", "p")); err != nil {
		t.Errorf("call after SetAPIKey: error = %v, want nil", err)
	}
}

// TestAnthropicWire checks the raw HTTP contract, including requests the
// SDK would never send.
func TestAnthropicWire(t *testing.T) {
	t.Parallel()
	_, url := anthServer(t, fake.AnthropicOptions{})
	good := `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name       string
		method     string
		path       string
		headers    map[string]string
		body       string
		wantStatus int
		wantType   string // error type; "" for a message
	}{
		{"x-api-key", "POST", "/v1/messages", map[string]string{"x-api-key": anthTestKey}, good, 200, ""},
		{"bearer", "POST", "/v1/messages", map[string]string{"Authorization": "Bearer " + anthTestKey}, good, 200, ""},
		{"no key", "POST", "/v1/messages", nil, good, 401, "authentication_error"},
		{"wrong key", "POST", "/v1/messages", map[string]string{"x-api-key": "nope"}, good, 401, "authentication_error"},
		{"no version", "POST", "/v1/messages", map[string]string{"x-api-key": anthTestKey, "anthropic-version": ""}, good, 400, "invalid_request_error"},
		{"no model", "POST", "/v1/messages", map[string]string{"x-api-key": anthTestKey}, `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error"},
		{"no max_tokens", "POST", "/v1/messages", map[string]string{"x-api-key": anthTestKey}, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error"},
		{"no messages", "POST", "/v1/messages", map[string]string{"x-api-key": anthTestKey}, `{"model":"m","max_tokens":10}`, 400, "invalid_request_error"},
		{"bad json", "POST", "/v1/messages", map[string]string{"x-api-key": anthTestKey}, `{`, 400, "invalid_request_error"},
		{"unknown path", "POST", "/v1/complete", map[string]string{"x-api-key": anthTestKey}, good, 404, "not_found_error"},
		{"wrong method", "GET", "/v1/messages", map[string]string{"x-api-key": anthTestKey}, "", 405, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := anthRawRequest(t, tt.method, url+tt.path, tt.headers, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			reqID := resp.Header.Get("request-id")
			if !strings.HasPrefix(reqID, "req_") {
				t.Errorf("request-id = %q, want req_ prefix", reqID)
			}
			if tt.wantType == "" {
				return
			}
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body %s: %v", body, err)
			}
			if e.Type != "error" || e.Error.Type != tt.wantType || e.Error.Message == "" || e.RequestID != reqID {
				t.Errorf("error body = %s, want type error, error.type %q, a message and request_id %q", body, tt.wantType, reqID)
			}
		})
	}
}

func TestAnthropicSchemaResponder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema map[string]any
		want   any
	}{
		{"no schema", nil, "This is a fake answer from the Anthropic fake."},
		{"enum", map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"enum": []any{"a", "b"}}}}, map[string]any{"x": "a"}},
		{"const", map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"const": "c"}}}, map[string]any{"x": "c"}},
		{"nullable", map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"type": []any{"null", "boolean"}}}}, map[string]any{"x": false}},
		{"min items", map[string]any{"type": "array", "minItems": 2.0, "items": map[string]any{"type": "integer"}}, []any{1, 1}},
		{"any of", map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "null"}}}, "example"},
		{"minimum", map[string]any{"type": "integer", "minimum": 5.0}, 5.0},
		{"ref", map[string]any{"$ref": "#/definitions/a", "definitions": map[string]any{"a": map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "number"}}}}}, map[string]any{"n": 1}},
		{"nested", map[string]any{"properties": map[string]any{"o": map[string]any{"properties": map[string]any{"s": map[string]any{"type": "string"}}}}}, map[string]any{"o": map[string]any{"s": "example"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := fake.AnthropicSchemaResponder(fake.AnthropicRequest{Schema: tt.schema})
			if err != nil {
				t.Fatalf("AnthropicSchemaResponder() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AnthropicSchemaResponder(%v) = %#v, want %#v", tt.schema, got, tt.want)
			}
		})
	}
}

func TestAnthropicCacheExpiry(t *testing.T) {
	t.Parallel()
	clock, advance := anthClock()
	_, url := anthServer(t, fake.AnthropicOptions{Now: clock})
	client := anthSDK(url, anthTestKey)
	system := strings.Repeat("x", 4400) // 1100 tokens, over the minimum of 1024 for claude-test-1

	steps := []struct {
		after      time.Duration
		wantCreate int64
		wantRead   int64
	}{
		{0, 1100, 0},
		{4 * time.Minute, 0, 1100},   // within 5 minutes of the last use
		{4 * time.Minute, 0, 1100},   // a read refreshed the entry
		{5*time.Minute + 1, 1100, 0}, // expired
		{time.Second, 0, 1100},
	}
	for i, s := range steps {
		advance(s.after)
		msg, err := client.Messages.New(context.Background(), anthParams(system, "p"))
		if err != nil {
			t.Fatalf("step %d: error = %v", i, err)
		}
		if msg.Usage.CacheCreationInputTokens != s.wantCreate || msg.Usage.CacheReadInputTokens != s.wantRead {
			t.Errorf("step %d: cache creation, read = %d, %d, want %d, %d", i, msg.Usage.CacheCreationInputTokens, msg.Usage.CacheReadInputTokens, s.wantCreate, s.wantRead)
		}
	}

	// Without cache_control the system prompt is plain input.
	p := anthParams(system, "p")
	msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model: p.Model, MaxTokens: p.MaxTokens, Messages: p.Messages, OutputConfig: p.OutputConfig,
		System: []anthropic.TextBlockParam{{Text: system}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if msg.Usage.CacheCreationInputTokens != 0 || msg.Usage.CacheReadInputTokens != 0 || msg.Usage.InputTokens != 1100 {
		t.Errorf("uncached usage = %+v, want 1100 input tokens and no cache", msg.Usage)
	}
}

// TestAnthropicMinCacheTokens checks that a cache_control'd system prompt
// shorter than the model's minimum is billed as plain input and leaves no
// cache entry, while one of exactly the minimum is cached.
func TestAnthropicMinCacheTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		model string
		min   int
	}{
		{"claude-opus-4-6", 4096},
		{"claude-opus-4-5-20251101", 4096},
		{"claude-haiku-4-5", 4096},
		{"claude-haiku-4-5-20251001", 4096},
		{"claude-sonnet-4-6", 2048},
		{"claude-3-5-haiku-20241022", 2048},
		{"claude-3-haiku-20240307", 2048},
		{"claude-sonnet-4-5-20250929", 1024},
		{"claude-sonnet-4-20250514", 1024},
		{"claude-opus-4-20250514", 1024},
		{"claude-opus-4-1-20250805", 1024},
		{"claude-3-7-sonnet-20250219", 1024},
		{"claude-test-1", 1024}, // unknown
	}
	for _, tt := range tests {
		for _, size := range []int{tt.min - 1, tt.min} {
			t.Run(tt.model+"/"+strconv.Itoa(size), func(t *testing.T) {
				t.Parallel()
				clock, _ := anthClock()
				f, url := anthServer(t, fake.AnthropicOptions{Now: clock})
				client := anthSDK(url, anthTestKey)
				p := anthParams(strings.Repeat("x", 4*size), "pppp") // size tokens of system, 1 of prompt
				p.Model = tt.model

				cached := int64(size)
				if size < tt.min {
					cached = 0
				}
				want := []anthropic.Usage{
					{InputTokens: 1 + int64(size) - cached, CacheCreationInputTokens: cached},
					{InputTokens: 1 + int64(size) - cached, CacheReadInputTokens: cached},
				}
				for i, w := range want {
					msg, err := client.Messages.New(context.Background(), p)
					if err != nil {
						t.Fatalf("call %d: Messages.New(%s, %d system tokens) error = %v, want nil", i, tt.model, size, err)
					}
					got := msg.Usage
					if got.InputTokens != w.InputTokens || got.CacheCreationInputTokens != w.CacheCreationInputTokens || got.CacheReadInputTokens != w.CacheReadInputTokens {
						t.Errorf("call %d: usage of %s with %d system tokens = input %d, cache creation %d, read %d, want %d, %d, %d",
							i, tt.model, size, got.InputTokens, got.CacheCreationInputTokens, got.CacheReadInputTokens,
							w.InputTokens, w.CacheCreationInputTokens, w.CacheReadInputTokens)
					}
				}
				if got := f.Calls(); got != 2 {
					t.Errorf("Calls() = %d, want 2", got)
				}
			})
		}
	}
}

func TestAnthropicMaxTokens(t *testing.T) {
	t.Parallel()
	_, url := anthServer(t, fake.AnthropicOptions{
		Respond: func(fake.AnthropicRequest) (any, error) {
			return map[string]any{"text": strings.Repeat("long ", 100)}, nil
		},
	})
	p := anthParams("s", "p")
	p.MaxTokens = 10
	msg, err := anthSDK(url, anthTestKey).Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != "max_tokens" || msg.Usage.OutputTokens != 10 || len(msg.Content[0].Text) != 40 {
		t.Errorf("stop, output tokens, text length = %q, %d, %d, want max_tokens, 10, 40", msg.StopReason, msg.Usage.OutputTokens, len(msg.Content[0].Text))
	}
}

// anthLimits reads one bucket's rate-limit headers.
func anthLimits(t *testing.T, h http.Header, bucket string) (remaining string, reset time.Time) {
	t.Helper()
	prefix := "anthropic-ratelimit-" + bucket + "-"
	reset, err := time.Parse(time.RFC3339, h.Get(prefix+"reset"))
	if err != nil {
		t.Fatalf("%sreset = %q: %v", prefix, h.Get(prefix+"reset"), err)
	}
	return h.Get(prefix + "remaining"), reset
}

// anthCall makes one call and returns its status and headers, from the
// answer or from the SDK's error.
func anthCall(t *testing.T, client *anthropic.Client, params anthropic.MessageNewParams) (int, http.Header, *anthropic.Error) {
	t.Helper()
	var resp *http.Response
	_, err := client.Messages.New(context.Background(), params, option.WithResponseInto(&resp))
	if err == nil {
		return resp.StatusCode, resp.Header, nil
	}
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("Messages.New() error = %v, want *anthropic.Error", err)
	}
	return apiErr.StatusCode, apiErr.Response.Header, apiErr
}

// TestAnthropicRequestBucket checks that the request limit is a token
// bucket refilled continuously, not a fixed window.
func TestAnthropicRequestBucket(t *testing.T) {
	t.Parallel()
	clock, advance := anthClock()
	f, url := anthServer(t, fake.AnthropicOptions{RequestsPerMinute: 60, Now: clock})
	client := anthSDK(url, anthTestKey)
	t0 := clock()

	// The bucket starts full: 60 calls at once succeed.
	for i := range 60 {
		status, h, _ := anthCall(t, client, anthParams("s", "p"))
		if status != 200 {
			t.Fatalf("call %d = %d, want 200", i, status)
		}
		remaining, reset := anthLimits(t, h, "requests")
		if want := strconv.Itoa(59 - i); remaining != want {
			t.Errorf("call %d: requests remaining = %s, want %s", i, remaining, want)
		}
		// One request refills every second.
		if want := t0.Add(time.Duration(i+1) * time.Second); !reset.Equal(want) {
			t.Errorf("call %d: requests reset = %v, want %v", i, reset, want)
		}
	}

	steps := []struct {
		name          string
		advance       time.Duration
		wantStatus    int
		wantRemaining string
		wantRetry     string        // retry-after; "" for none
		wantReset     time.Duration // requests reset, after the clock
	}{
		{"empty bucket", 0, 429, "0", "1", time.Minute},
		{"still empty half a second on", 500 * time.Millisecond, 429, "0", "1", 59500 * time.Millisecond}, // half a request in the bucket
		{"one request refilled", 500 * time.Millisecond, 200, "0", "", time.Minute},
		{"thirty refilled", 30 * time.Second, 200, "29", "", 31 * time.Second},
		{"full again, no higher", 5 * time.Minute, 200, "59", "", time.Second},
	}
	for _, s := range steps {
		advance(s.advance)
		status, h, apiErr := anthCall(t, client, anthParams("s", "p"))
		if status != s.wantStatus {
			t.Fatalf("%s: status = %d, want %d", s.name, status, s.wantStatus)
		}
		if apiErr != nil && apiErr.Type() != "rate_limit_error" {
			t.Errorf("%s: error type = %q, want rate_limit_error", s.name, apiErr.Type())
		}
		remaining, reset := anthLimits(t, h, "requests")
		if remaining != s.wantRemaining {
			t.Errorf("%s: requests remaining = %s, want %s", s.name, remaining, s.wantRemaining)
		}
		if got := h.Get("retry-after"); got != s.wantRetry {
			t.Errorf("%s: retry-after = %q, want %q", s.name, got, s.wantRetry)
		}
		// The header has whole seconds, rounded up.
		want := clock().Add(s.wantReset)
		if want.Truncate(time.Second) != want {
			want = want.Truncate(time.Second).Add(time.Second)
		}
		if !reset.Equal(want) {
			t.Errorf("%s: requests reset = %v, want %v", s.name, reset, want)
		}
	}
	if got, want := f.Calls(), 63; got != want {
		t.Errorf("Calls() = %d, want %d", got, want)
	}
	if got, want := f.Answers(), map[int]int{200: 63, 429: 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("Answers() = %v, want %v", got, want)
	}
}

// TestAnthropicTokenBucket checks the token limit: a call needs its input
// tokens in the bucket, and its output is taken once it answers.
func TestAnthropicTokenBucket(t *testing.T) {
	t.Parallel()
	clock, advance := anthClock()
	_, url := anthServer(t, fake.AnthropicOptions{
		TokensPerMinute: 600, // 10 a second
		Now:             clock,
		Respond:         func(fake.AnthropicRequest) (any, error) { return strings.Repeat("x", 400), nil }, // 100 output tokens
	})
	client := anthSDK(url, anthTestKey)
	params := anthParams("", strings.Repeat("p", 1200)) // 300 input tokens

	status, h, _ := anthCall(t, client, params)
	if status != 200 {
		t.Fatalf("first call = %d, want 200", status)
	}
	remaining, reset := anthLimits(t, h, "tokens")
	if remaining != "200" || !reset.Equal(clock().Add(40*time.Second)) {
		t.Errorf("after one call: tokens remaining, reset = %s, %v, want 200, %v", remaining, reset, clock().Add(40*time.Second))
	}

	// 200 tokens left; the next call needs 300, ten seconds away.
	status, h, apiErr := anthCall(t, client, params)
	if status != 429 || apiErr.Type() != "rate_limit_error" {
		t.Fatalf("second call = %d %v, want 429 rate_limit_error", status, apiErr)
	}
	if got := h.Get("retry-after"); got != "10" {
		t.Errorf("retry-after = %q, want 10", got)
	}
	if remaining, _ := anthLimits(t, h, "tokens"); remaining != "200" {
		t.Errorf("after a 429: tokens remaining = %s, want 200 (a 429 takes nothing)", remaining)
	}

	advance(10 * time.Second)
	if status, _, _ := anthCall(t, client, params); status != 200 {
		t.Errorf("call ten seconds later = %d, want 200", status)
	}
}

func TestAnthropicRandomFaults(t *testing.T) {
	t.Parallel()
	faults := []fake.AnthropicFault{
		{Probability: 0.15, Status: 429},
		{Probability: 0.15, Status: 529},
	}
	f, url := anthServer(t, fake.AnthropicOptions{Faults: faults, Seed: 7, RequestsPerMinute: 1_000_000})
	client := anthSDK(url, anthTestKey)

	const calls = 2000
	got := map[int]int{}
	for i := range calls {
		status, h, apiErr := anthCall(t, client, anthParams("s", "p"))
		got[status]++
		switch status {
		case 200:
		case 429:
			if apiErr.Type() != "rate_limit_error" || h.Get("retry-after") != "1" {
				t.Fatalf("call %d: 429 type %q retry-after %q, want rate_limit_error and 1", i, apiErr.Type(), h.Get("retry-after"))
			}
			// The buckets the headers show are not what ran out.
			if r, _ := strconv.Atoi(h.Get("anthropic-ratelimit-requests-remaining")); r == 0 {
				t.Fatalf("call %d: 429 fault shows requests remaining 0, want the real, non-empty bucket", i)
			}
		case 529:
			var body struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(apiErr.RawJSON()), &body); err != nil {
				t.Fatalf("call %d: 529 body %q: %v", i, apiErr.RawJSON(), err)
			}
			if apiErr.Type() != "overloaded_error" || apiErr.Message != "Overloaded" ||
				body.Type != "error" || body.Error.Type != "overloaded_error" ||
				!strings.HasPrefix(apiErr.RequestID, "req_") || body.RequestID != apiErr.RequestID {
				t.Fatalf("call %d: 529 = type %q message %q request id %q body %s, want overloaded_error, Overloaded and a request id in header and body",
					i, apiErr.Type(), apiErr.Message, apiErr.RequestID, apiErr.RawJSON())
			}
			if h.Get("anthropic-ratelimit-requests-limit") == "" {
				t.Fatalf("call %d: 529 without rate-limit headers", i)
			}
		default:
			t.Fatalf("call %d: status %d, want 200, 429 or 529", i, status)
		}
	}
	t.Logf("statuses over %d calls: %v", calls, got)
	for _, status := range []int{429, 529} {
		if frac := float64(got[status]) / calls; frac < 0.12 || frac > 0.18 {
			t.Errorf("fraction of %d = %.3f (%d of %d), want 0.15 ± 0.03", status, frac, got[status], calls)
		}
	}
	if answers := f.Answers(); !reflect.DeepEqual(answers, got) {
		t.Errorf("Answers() = %v, want the statuses seen, %v", answers, got)
	}
	if f.Calls() != got[200] {
		t.Errorf("Calls() = %d, want %d", f.Calls(), got[200])
	}
}

// TestAnthropicFaultsRepeat checks that a seed fixes the sequence of faults.
func TestAnthropicFaultsRepeat(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) []int {
		_, url := anthServer(t, fake.AnthropicOptions{
			Faults:            []fake.AnthropicFault{{Probability: 0.3, Status: 529}, {Probability: 0.2, Status: 500}},
			Seed:              seed,
			RequestsPerMinute: 1_000_000,
		})
		client := anthSDK(url, anthTestKey)
		var seq []int
		for range 100 {
			status, _, _ := anthCall(t, client, anthParams("s", "p"))
			seq = append(seq, status)
		}
		return seq
	}
	a, b, c := run(1), run(1), run(2)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("two runs with seed 1 differ:\n%v\n%v", a, b)
	}
	if reflect.DeepEqual(a, c) {
		t.Errorf("runs with seeds 1 and 2 are the same: %v", a)
	}
}

// TestAnthropicFaultsTakeNoCapacity checks that faults leave the rate-limit
// buckets as they were.
func TestAnthropicFaultsTakeNoCapacity(t *testing.T) {
	t.Parallel()
	clock, _ := anthClock()
	f, url := anthServer(t, fake.AnthropicOptions{
		RequestsPerMinute: 10,
		Now:               clock,
		Faults:            []fake.AnthropicFault{{Probability: 0.4, Status: 529}, {Probability: 0.1, Status: 500}},
	})
	client := anthSDK(url, anthTestKey)
	successes := 0
	for i := 0; successes < 10; i++ {
		if i > 200 {
			t.Fatal("no 10 successes in 200 calls")
		}
		status, h, _ := anthCall(t, client, anthParams("s", "p"))
		if status == 200 {
			successes++
		}
		if got, want := h.Get("anthropic-ratelimit-requests-remaining"), strconv.Itoa(10-successes); got != want {
			t.Errorf("call %d (%d): requests remaining = %s, want %s", i, status, got, want)
		}
	}
	// The bucket is now empty: what is not a fault is a 429.
	for i := 0; ; i++ {
		status, _, _ := anthCall(t, client, anthParams("s", "p"))
		if status == 429 {
			break
		}
		if status == 200 || i > 100 {
			t.Fatalf("call on an empty bucket = %d, want a fault or 429", status)
		}
	}
	if got := f.Calls(); got != 10 {
		t.Errorf("Calls() = %d, want 10", got)
	}
}

func TestAnthropicAnswers(t *testing.T) {
	t.Parallel()
	clock, _ := anthClock()
	f, url := anthServer(t, fake.AnthropicOptions{RequestsPerMinute: 1, Now: clock})
	f.FailNext(529, "", 1, 0)
	ctx := context.Background()
	p := anthParams("s", "p")
	_, _ = anthSDK(url, "sk-wrong").Messages.New(ctx, p)  // 401
	_, _ = anthSDK(url, anthTestKey).Messages.New(ctx, p) // 529, injected
	_, _ = anthSDK(url, anthTestKey).Messages.New(ctx, p) // 200
	_, _ = anthSDK(url, anthTestKey).Messages.New(ctx, p) // 429, bucket empty
	want := map[int]int{200: 1, 401: 1, 429: 1, 529: 1}
	if got := f.Answers(); !reflect.DeepEqual(got, want) {
		t.Errorf("Answers() = %v, want %v", got, want)
	}
}

func TestAnthropicBadFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults []fake.AnthropicFault
	}{
		{"negative", []fake.AnthropicFault{{Probability: -0.1, Status: 529}}},
		{"over one", []fake.AnthropicFault{{Probability: 0.6, Status: 529}, {Probability: 0.6, Status: 500}}},
		{"not an error", []fake.AnthropicFault{{Probability: 0.1, Status: 200}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if recover() == nil {
					t.Errorf("NewAnthropic(Faults: %+v) did not panic", tt.faults)
				}
			}()
			fake.NewAnthropic(fake.AnthropicOptions{Faults: tt.faults})
		})
	}
}

func TestAnthropicRespondError(t *testing.T) {
	t.Parallel()
	_, url := anthServer(t, fake.AnthropicOptions{
		Respond: func(fake.AnthropicRequest) (any, error) { return nil, errors.New("boom") },
	})
	_, err := anthSDK(url, anthTestKey).Messages.New(context.Background(), anthParams("s", "p"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Type() != "api_error" {
		t.Errorf("error = %v, want 500 api_error", err)
	}
}

// anthUsageOf is the usage of one answer as the client read it from the
// body, in the form Usage sums it.
func anthUsageOf(u anthropic.Usage) fake.AnthropicUsage {
	return fake.AnthropicUsage{
		Calls:                    1,
		InputTokens:              u.InputTokens,
		OutputTokens:             u.OutputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens,
		CacheReadInputTokens:     u.CacheReadInputTokens,
	}
}

func anthAddUsage(m map[string]fake.AnthropicUsage, model string, u fake.AnthropicUsage) {
	t := m[model]
	t.Calls += u.Calls
	t.InputTokens += u.InputTokens
	t.OutputTokens += u.OutputTokens
	t.CacheCreationInputTokens += u.CacheCreationInputTokens
	t.CacheReadInputTokens += u.CacheReadInputTokens
	m[model] = t
}

// TestAnthropicUsage checks that Usage sums, per model, exactly the usage
// written in the 200 answers, and nothing from failed calls.
func TestAnthropicUsage(t *testing.T) {
	t.Parallel()
	clock, _ := anthClock() // stopped: the request bucket does not refill
	f, url := anthServer(t, fake.AnthropicOptions{
		Now:               clock,
		RequestsPerMinute: 6, // the admitted calls below: five answers and one responder error
		Respond: func(req fake.AnthropicRequest) (any, error) {
			if req.Prompt == "fail" {
				return nil, errors.New("boom")
			}
			return strings.Repeat("a", 400), nil // 100 output tokens
		},
	})
	if got := f.Usage(); len(got) != 0 {
		t.Errorf("Usage() before any call = %v, want empty", got)
	}

	long := strings.Repeat("x", 4*1100)  // 1100 tokens: cached on claude-test-1
	haiku := strings.Repeat("y", 4*4096) // 4096 tokens: cached on claude-haiku-4-5
	steps := []struct {
		name       string
		model      string
		system     string
		prompt     string
		maxTokens  int64
		key        string
		fail       func(*fake.Anthropic)
		wantStatus int
	}{
		{"cache write", "claude-test-1", long, "pppp", 1024, anthTestKey, nil, 200},
		{"cache read", "claude-test-1", long, "pppp", 1024, anthTestKey, nil, 200},
		{"system under the minimum", "claude-test-1", "short system", "pppp", 1024, anthTestKey, nil, 200},
		{"cut at max_tokens", "claude-test-1", long, "pppp", 10, anthTestKey, nil, 200},
		{"another model", "claude-haiku-4-5-20251001", haiku, "pppp", 1024, anthTestKey, nil, 200},
		{"injected fault", "claude-test-1", long, "pppp", 1024, anthTestKey, func(f *fake.Anthropic) { f.FailNext(529, "", 1, 0) }, 529},
		{"wrong key", "claude-test-1", long, "pppp", 1024, "sk-wrong", nil, 401},
		{"responder error", "claude-test-1", long, "fail", 1024, anthTestKey, nil, 500},
		{"rate limited", "claude-test-1", long, "pppp", 1024, anthTestKey, nil, 429},
	}
	fromBodies := map[string]fake.AnthropicUsage{}
	for _, s := range steps {
		if s.fail != nil {
			s.fail(f)
		}
		p := anthParams(s.system, s.prompt)
		p.Model = s.model
		p.MaxTokens = s.maxTokens
		msg, err := anthSDK(url, s.key).Messages.New(context.Background(), p)
		status := 200
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) {
			status = apiErr.StatusCode
		} else if err != nil {
			t.Fatalf("%s: Messages.New() error = %v, want nil or *anthropic.Error", s.name, err)
		}
		if status != s.wantStatus {
			t.Fatalf("%s: status = %d, want %d", s.name, status, s.wantStatus)
		}
		if status == 200 {
			anthAddUsage(fromBodies, s.model, anthUsageOf(msg.Usage))
		}
	}

	got := f.Usage()
	if !reflect.DeepEqual(got, fromBodies) {
		t.Errorf("Usage() = %+v, want the sum of the answers' usage, %+v", got, fromBodies)
	}
	// The same, worked out by hand from the fake's token counting.
	want := map[string]fake.AnthropicUsage{
		"claude-test-1": {
			Calls:                    4,
			InputTokens:              1 + 1 + (1 + 3) + 1,
			OutputTokens:             100 + 100 + 100 + 10,
			CacheCreationInputTokens: 1100,
			CacheReadInputTokens:     1100 + 1100,
		},
		"claude-haiku-4-5-20251001": {Calls: 1, InputTokens: 1, OutputTokens: 100, CacheCreationInputTokens: 4096},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Usage() = %+v, want %+v", got, want)
	}
	if n, calls := got["claude-test-1"].Calls+got["claude-haiku-4-5-20251001"].Calls, f.Calls(); n != int64(calls) {
		t.Errorf("Usage() calls = %d, want Calls() = %d", n, calls)
	}

	// Usage returns a copy.
	got["claude-test-1"] = fake.AnthropicUsage{}
	delete(got, "claude-haiku-4-5-20251001")
	if again := f.Usage(); !reflect.DeepEqual(again, want) {
		t.Errorf("Usage() after changing an earlier result = %+v, want %+v", again, want)
	}
}

// TestAnthropicUsageConcurrent checks Usage against the answers' bodies
// when calls to several models, some failing, run at once.
func TestAnthropicUsageConcurrent(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{
		RequestsPerMinute: 1_000_000,
		Faults:            []fake.AnthropicFault{{Probability: 0.2, Status: 529}},
	})
	client := anthSDK(url, anthTestKey)
	models := []string{"claude-test-1", "claude-sonnet-4-6", "claude-haiku-4-5"}
	systems := []string{"", "short", strings.Repeat("z", 4*2048), strings.Repeat("w", 4*4096)}

	var (
		mu         sync.Mutex
		fromBodies = map[string]fake.AnthropicUsage{}
		wg         sync.WaitGroup
	)
	for i := range 120 {
		wg.Go(func() {
			model := models[i%len(models)]
			p := anthParams(systems[i%len(systems)], strings.Repeat("p", i+1))
			p.Model = model
			p.MaxTokens = int64(5 + i%20) // some answers are cut
			msg, err := client.Messages.New(context.Background(), p)
			if err != nil {
				return // a fault: billed nothing
			}
			mu.Lock()
			defer mu.Unlock()
			anthAddUsage(fromBodies, model, anthUsageOf(msg.Usage))
		})
	}
	wg.Wait()

	if got := f.Usage(); !reflect.DeepEqual(got, fromBodies) {
		t.Errorf("Usage() = %+v, want the sum of the answers' usage, %+v", got, fromBodies)
	}
	var calls int64
	for _, u := range fromBodies {
		calls += u.Calls
	}
	if answers := f.Answers(); calls != int64(answers[200]) || calls == 0 {
		t.Errorf("answers counted in Usage = %d, want Answers()[200] = %d (and not 0)", calls, answers[200])
	}
}

// anthRawRequest sends a request to the fake as a client of the API would,
// with the JSON content type and an anthropic-version header; headers add
// to them, and an empty value removes one. It returns the response and its
// body, read.
func anthRawRequest(t *testing.T, method, url string, headers map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}
