package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
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
	f, url := anthServer(t, fake.AnthropicOptions{})
	client := anthSDK(url, anthTestKey)
	system := strings.Repeat("You triage GitHub issues. ", 40)
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
			req, err := http.NewRequest(tt.method, url+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("content-type", "application/json")
			req.Header.Set("anthropic-version", "2023-06-01")
			for k, v := range tt.headers {
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
			body, _ := io.ReadAll(resp.Body)
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
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	_, url := anthServer(t, fake.AnthropicOptions{Now: clock})
	client := anthSDK(url, anthTestKey)
	system := strings.Repeat("x", 400) // 100 tokens

	steps := []struct {
		after      time.Duration
		wantCreate int64
		wantRead   int64
	}{
		{0, 100, 0},
		{4 * time.Minute, 0, 100},   // within 5 minutes of the last use
		{4 * time.Minute, 0, 100},   // a read refreshed the entry
		{5*time.Minute + 1, 100, 0}, // expired
		{time.Second, 0, 100},
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
	if msg.Usage.CacheCreationInputTokens != 0 || msg.Usage.CacheReadInputTokens != 0 || msg.Usage.InputTokens != 100 {
		t.Errorf("uncached usage = %+v, want 100 input tokens and no cache", msg.Usage)
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

func TestAnthropicRateLimit(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{RequestsPerMinute: 2})
	client := anthSDK(url, anthTestKey)
	for i := range 2 {
		if _, err := client.Messages.New(context.Background(), anthParams("s", "p")); err != nil {
			t.Fatalf("call %d: error = %v", i, err)
		}
	}
	_, err := client.Messages.New(context.Background(), anthParams("s", "p"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type() != "rate_limit_error" {
		t.Fatalf("third call: error = %v, want 429 rate_limit_error", err)
	}
	h := apiErr.Response.Header
	if h.Get("retry-after") == "" || h.Get("anthropic-ratelimit-requests-remaining") != "0" {
		t.Errorf("429 headers retry-after %q, requests remaining %q, want set and 0", h.Get("retry-after"), h.Get("anthropic-ratelimit-requests-remaining"))
	}
	if got := f.Calls(); got != 2 {
		t.Errorf("Calls() = %d, want 2", got)
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
