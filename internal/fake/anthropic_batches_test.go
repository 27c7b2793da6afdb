package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/hookwise/hookwise/internal/fake"
)

func anthBatchRequest(id string, p anthropic.MessageNewParams) anthropic.MessageBatchNewParamsRequest {
	return anthropic.MessageBatchNewParamsRequest{CustomID: id, Params: anthropic.MessageBatchNewParamsRequestParams{
		Model: p.Model, MaxTokens: p.MaxTokens, System: p.System, Messages: p.Messages, OutputConfig: p.OutputConfig,
	}}
}

// anthResults reads a batch's results with the SDK, by custom id.
func anthResults(t *testing.T, client *anthropic.Client, id string) map[string]anthropic.MessageBatchResultUnion {
	t.Helper()
	stream := client.Messages.Batches.ResultsStreaming(context.Background(), id, anthropic.MessageBatchResultsParams{})
	defer stream.Close()
	out := map[string]anthropic.MessageBatchResultUnion{}
	for stream.Next() {
		r := stream.Current()
		out[r.CustomID] = r.Result
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("ResultsStreaming(%s) error = %v", id, err)
	}
	return out
}

// The SDK creates a batch, polls it until it ends and reads its results;
// the batched requests are answered by the same responder and prompt cache
// as /v1/messages, and their usage counts in Usage and BatchUsage.
func TestAnthropicSDKBatch(t *testing.T) {
	t.Parallel()
	clock, advance := anthClock()
	f, url := anthServer(t, fake.AnthropicOptions{Now: clock, BatchDelay: time.Minute})
	client := anthSDK(url, anthTestKey)
	ctx := context.Background()
	system := strings.Repeat("You triage GitHub issues. ", 200) // 1300 tokens: long enough to cache
	bad := anthParams(system, "never sent")
	bad.Messages = nil

	b, err := client.Messages.Batches.New(ctx, anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{
		anthBatchRequest("first", anthParams(system, "Issue #1: the build is broken on main.")),
		anthBatchRequest("second", anthParams(system, "Issue #2: the docs have a typo.")),
		anthBatchRequest("bad", bad),
	}})
	if err != nil {
		t.Fatalf("Batches.New() error = %v", err)
	}
	if !strings.HasPrefix(b.ID, "msgbatch_") || b.Type != "message_batch" || b.ProcessingStatus != anthropic.MessageBatchProcessingStatusInProgress {
		t.Errorf("new batch = id %q type %q status %q, want msgbatch_…, message_batch, in_progress", b.ID, b.Type, b.ProcessingStatus)
	}
	if b.RequestCounts.Processing != 3 || !b.EndedAt.IsZero() || b.ResultsURL != "" {
		t.Errorf("new batch = processing %d, ended_at %v, results_url %q; want 3 processing, no end, no results", b.RequestCounts.Processing, b.EndedAt, b.ResultsURL)
	}
	if want := clock().Add(24 * time.Hour); !b.CreatedAt.Equal(clock()) || !b.ExpiresAt.Equal(want) {
		t.Errorf("new batch created %v, expires %v; want %v and %v", b.CreatedAt, b.ExpiresAt, clock(), want)
	}
	if f.Calls() != 0 {
		t.Errorf("Calls() = %d before the batch ends, want 0", f.Calls())
	}

	// Still in progress: no results yet.
	advance(59 * time.Second)
	if got, err := client.Messages.Batches.Get(ctx, b.ID, anthropic.MessageBatchGetParams{}); err != nil || got.ProcessingStatus != "in_progress" {
		t.Fatalf("Batches.Get() before BatchDelay = %v, %v; want in_progress", got, err)
	}
	stream := client.Messages.Batches.ResultsStreaming(ctx, b.ID, anthropic.MessageBatchResultsParams{})
	if stream.Next() || stream.Err() == nil {
		t.Errorf("ResultsStreaming() of a batch in progress gave results, want an error")
	}
	stream.Close()

	advance(time.Second)
	got, err := client.Messages.Batches.Get(ctx, b.ID, anthropic.MessageBatchGetParams{})
	if err != nil {
		t.Fatalf("Batches.Get() error = %v", err)
	}
	wantCounts := anthropic.MessageBatchRequestCounts{Succeeded: 2, Errored: 1}
	counts := anthropic.MessageBatchRequestCounts{Processing: got.RequestCounts.Processing, Succeeded: got.RequestCounts.Succeeded,
		Errored: got.RequestCounts.Errored, Canceled: got.RequestCounts.Canceled, Expired: got.RequestCounts.Expired}
	if got.ProcessingStatus != "ended" || !got.EndedAt.Equal(clock()) || !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("ended batch = %s at %v, counts %+v; want ended at %v, 2 succeeded and 1 errored", got.ProcessingStatus, got.EndedAt, counts, clock())
	}
	if want := url + "/v1/messages/batches/" + b.ID + "/results"; got.ResultsURL != want {
		t.Errorf("results_url = %q, want %q", got.ResultsURL, want)
	}

	results := anthResults(t, client, b.ID)
	if len(results) != 3 {
		t.Fatalf("results = %d lines, want 3", len(results))
	}
	var sum fake.AnthropicUsage
	for _, id := range []string{"first", "second"} {
		r := results[id]
		if r.Type != "succeeded" || r.Message.Type != "message" || r.Message.StopReason != "end_turn" || len(r.Message.Content) != 1 {
			t.Fatalf("result %s = %s, want a succeeded message", id, r.RawJSON())
		}
		var answer map[string]any
		if err := json.Unmarshal([]byte(r.Message.Content[0].Text), &answer); err != nil || answer["kind"] != "bug" {
			t.Errorf("result %s answer = %q, want the schema filled", id, r.Message.Content[0].Text)
		}
		if tier := r.Message.Usage.ServiceTier; tier != "batch" {
			t.Errorf("result %s service_tier = %q, want batch", id, tier)
		}
		u := r.Message.Usage
		sum = sum.Add(fake.AnthropicUsage{Calls: 1, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
			CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens})
	}
	// One prompt cache for both APIs: the first request writes the prefix,
	// the second reads it.
	if w, r := results["first"].Message.Usage, results["second"].Message.Usage; w.CacheCreationInputTokens != 1300 || r.CacheReadInputTokens != 1300 {
		t.Errorf("cache write %d then read %d, want 1300 each", w.CacheCreationInputTokens, r.CacheReadInputTokens)
	}
	if r := results["bad"]; r.Type != "errored" || r.Error.Error.Type != "invalid_request_error" || !strings.Contains(r.Error.Error.Message, "messages") {
		t.Errorf("result bad = %s, want errored with an invalid_request_error about messages", r.RawJSON())
	}
	if u := f.Usage()["claude-test-1"]; u != sum {
		t.Errorf("Usage() = %+v, want the results' usage %+v", u, sum)
	}
	if u := f.BatchUsage()["claude-test-1"]; u != sum {
		t.Errorf("BatchUsage() = %+v, want the results' usage %+v", u, sum)
	}
	if f.Calls() != 2 {
		t.Errorf("Calls() = %d, want 2 (the succeeded requests)", f.Calls())
	}
	for _, q := range f.Requests() {
		if !q.Batch {
			t.Errorf("request %q not marked Batch", q.Prompt)
		}
	}
	if bs := f.Batches(); len(bs) != 1 || bs[0] != (fake.AnthropicBatch{ID: b.ID, Requests: 3, Ended: true, Succeeded: 2, Errored: 1}) {
		t.Errorf("Batches() = %+v, want the one ended batch", bs)
	}

	// A synchronous call afterwards reads the same cache and counts in
	// Usage, not in BatchUsage.
	msg, err := client.Messages.New(ctx, anthParams(system, "Issue #3"))
	if err != nil || msg.Usage.CacheReadInputTokens != 1300 || msg.Usage.ServiceTier != "standard" {
		t.Fatalf("Messages.New() after the batch = %+v, %v; want a cache read at the standard tier", msg, err)
	}
	if u := f.BatchUsage()["claude-test-1"]; u != sum {
		t.Errorf("BatchUsage() after a synchronous call = %+v, want %+v", u, sum)
	}
	if u := f.Usage()["claude-test-1"]; u.Calls != 3 {
		t.Errorf("Usage().Calls = %d, want 3", u.Calls)
	}
}

func TestAnthropicBatchFailures(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{BatchDelay: -1})
	client := anthSDK(url, anthTestKey)
	ctx := context.Background()
	f.FailNextBatchRequests("errored", "overloaded_error", 1)
	f.FailNextBatchRequests("expired", "", 1)
	f.FailNextBatchRequests("canceled", "", 1)
	var reqs []anthropic.MessageBatchNewParamsRequest
	for _, id := range []string{"a", "b", "c", "d"} {
		reqs = append(reqs, anthBatchRequest(id, anthParams("", "prompt "+id)))
	}
	b, err := client.Messages.Batches.New(ctx, anthropic.MessageBatchNewParams{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	// A negative delay: in progress until EndBatches.
	if got, _ := client.Messages.Batches.Get(ctx, b.ID, anthropic.MessageBatchGetParams{}); got.ProcessingStatus != "in_progress" {
		t.Fatalf("status before EndBatches = %q, want in_progress", got.ProcessingStatus)
	}
	f.EndBatches()
	results := anthResults(t, client, b.ID)
	want := map[string]string{"a": "errored", "b": "expired", "c": "canceled", "d": "succeeded"}
	for id, typ := range want {
		if got := results[id].Type; got != typ {
			t.Errorf("result %s = %q, want %q", id, got, typ)
		}
	}
	if e := results["a"].Error; e.Type != "error" || e.Error.Type != "overloaded_error" || !strings.HasPrefix(e.RequestID, "req_") {
		t.Errorf("errored result = %s, want an overloaded_error with a request id", results["a"].RawJSON())
	}
	if u := f.BatchUsage()["claude-test-1"]; u.Calls != 1 {
		t.Errorf("BatchUsage().Calls = %d, want 1: failed requests are not billed", u.Calls)
	}
}

func TestAnthropicBatchExpires(t *testing.T) {
	t.Parallel()
	clock, advance := anthClock()
	f, url := anthServer(t, fake.AnthropicOptions{Now: clock, BatchDelay: -1})
	client := anthSDK(url, anthTestKey)
	b, err := client.Messages.Batches.New(context.Background(), anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{
		anthBatchRequest("only", anthParams("", "prompt")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	advance(24 * time.Hour)
	got, err := client.Messages.Batches.Get(context.Background(), b.ID, anthropic.MessageBatchGetParams{})
	if err != nil || got.ProcessingStatus != "ended" || got.RequestCounts.Expired != 1 || !got.EndedAt.Equal(got.ExpiresAt) {
		t.Fatalf("batch after 24h = %+v, %v; want ended at expires_at with 1 expired", got, err)
	}
	if r := anthResults(t, client, b.ID)["only"]; r.Type != "expired" {
		t.Errorf("result = %s, want expired", r.RawJSON())
	}
	if f.Calls() != 0 {
		t.Errorf("Calls() = %d, want 0", f.Calls())
	}
}

// TestAnthropicBatchWire checks the raw HTTP contract of the batch
// endpoints, including requests the SDK would never send.
func TestAnthropicBatchWire(t *testing.T) {
	t.Parallel()
	_, url := anthServer(t, fake.AnthropicOptions{})
	one := func(id string) string {
		return `{"custom_id":"` + id + `","params":{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}}`
	}
	key := map[string]string{"x-api-key": anthTestKey}
	tests := []struct {
		name       string
		method     string
		path       string
		headers    map[string]string
		body       string
		wantStatus int
		wantType   string // error type; "" for a batch
	}{
		{"create", "POST", "/v1/messages/batches", key, `{"requests":[` + one("a-1") + `,` + one("B_2") + `]}`, 200, ""},
		{"no key", "POST", "/v1/messages/batches", nil, `{"requests":[` + one("a") + `]}`, 401, "authentication_error"},
		{"no version", "POST", "/v1/messages/batches", map[string]string{"x-api-key": anthTestKey, "anthropic-version": ""}, `{"requests":[` + one("a") + `]}`, 400, "invalid_request_error"},
		{"no requests", "POST", "/v1/messages/batches", key, `{"requests":[]}`, 400, "invalid_request_error"},
		{"bad json", "POST", "/v1/messages/batches", key, `{"requests":`, 400, "invalid_request_error"},
		{"bad custom id", "POST", "/v1/messages/batches", key, `{"requests":[` + one("a b") + `]}`, 400, "invalid_request_error"},
		{"long custom id", "POST", "/v1/messages/batches", key, `{"requests":[` + one(strings.Repeat("x", 65)) + `]}`, 400, "invalid_request_error"},
		{"duplicate custom id", "POST", "/v1/messages/batches", key, `{"requests":[` + one("a") + `,` + one("a") + `]}`, 400, "invalid_request_error"},
		{"no params", "POST", "/v1/messages/batches", key, `{"requests":[{"custom_id":"a"}]}`, 400, "invalid_request_error"},
		{"list with limit 0", "GET", "/v1/messages/batches?limit=0", key, "", 400, "invalid_request_error"},
		{"list with limit 1001", "GET", "/v1/messages/batches?limit=1001", key, "", 400, "invalid_request_error"},
		{"list with both cursors", "GET", "/v1/messages/batches?before_id=a&after_id=b", key, "", 400, "invalid_request_error"},
		{"list after an unknown batch", "GET", "/v1/messages/batches?after_id=msgbatch_nope", key, "", 400, "invalid_request_error"},
		{"list without a key", "GET", "/v1/messages/batches", nil, "", 401, "authentication_error"},
		{"wrong method on the list", "PUT", "/v1/messages/batches", key, "", 405, "invalid_request_error"},
		{"unknown batch", "GET", "/v1/messages/batches/msgbatch_nope", key, "", 404, "not_found_error"},
		{"unknown results", "GET", "/v1/messages/batches/msgbatch_nope/results", key, "", 404, "not_found_error"},
		{"unknown sub-resource", "POST", "/v1/messages/batches/msgbatch_nope/cancel", key, "", 404, "not_found_error"},
		{"wrong method", "DELETE", "/v1/messages/batches/msgbatch_nope", key, "", 405, "invalid_request_error"},
		{"not the batch path", "POST", "/v1/messages/batchesx", key, "", 404, "not_found_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := anthRawRequest(t, tt.method, url+tt.path, tt.headers, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus)
			}
			if h := resp.Header.Get("anthropic-ratelimit-requests-limit"); h != "" {
				t.Errorf("batch answer carries the Messages API's rate-limit headers")
			}
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type string `json:"type"`
				} `json:"error"`
				RequestCounts struct {
					Processing int `json:"processing"`
				} `json:"request_counts"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if tt.wantType == "" {
				if e.Type != "message_batch" || e.RequestCounts.Processing != 2 {
					t.Errorf("body = %s, want a message_batch of 2 requests", body)
				}
				return
			}
			if e.Type != "error" || e.Error.Type != tt.wantType {
				t.Errorf("error body = %s, want error.type %q", body, tt.wantType)
			}
		})
	}
}

// Faults injected with FailNext answer batch calls too: the API fails any
// endpoint.
func TestAnthropicBatchFailNext(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{})
	client := anthSDK(url, anthTestKey)
	f.FailNext(529, "", 1, 0)
	_, err := client.Messages.Batches.New(context.Background(), anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{
		anthBatchRequest("a", anthParams("", "prompt")),
	}})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 {
		t.Fatalf("Batches.New() after FailNext(529) = %v, want a 529", err)
	}
	if got := f.Answers()[529]; got != 1 {
		t.Errorf("Answers()[529] = %d, want 1", got)
	}
}

// The list of batches, newest first, in pages the SDK follows in either
// direction; the raw page carries data, has_more, first_id and last_id.
func TestAnthropicBatchList(t *testing.T) {
	t.Parallel()
	clock, advance := anthClock()
	f, url := anthServer(t, fake.AnthropicOptions{Now: clock, BatchDelay: time.Minute})
	client := anthSDK(url, anthTestKey)
	ctx := context.Background()
	var made []string // oldest first
	for i := range 5 {
		b, err := client.Messages.Batches.New(ctx, anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{
			anthBatchRequest(fmt.Sprintf("r%d", i), anthParams("", "prompt")),
		}})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, b.ID)
		advance(time.Second)
	}
	newest := slices.Clone(made)
	slices.Reverse(newest)

	// Every batch, newest first, two at a time.
	var got []string
	pager := client.Messages.Batches.ListAutoPaging(ctx, anthropic.MessageBatchListParams{Limit: anthropic.Int(2)})
	for pager.Next() {
		got = append(got, pager.Current().ID)
	}
	if err := pager.Err(); err != nil || !slices.Equal(got, newest) {
		t.Fatalf("ListAutoPaging() = %q, %v; want %q", got, err, newest)
	}

	// The raw pages.
	type page struct {
		Data []struct {
			ID               string  `json:"id"`
			Type             string  `json:"type"`
			ProcessingStatus string  `json:"processing_status"`
			CreatedAt        string  `json:"created_at"`
			ResultsURL       *string `json:"results_url"`
		} `json:"data"`
		HasMore bool    `json:"has_more"`
		FirstID *string `json:"first_id"`
		LastID  *string `json:"last_id"`
	}
	list := func(query string) page {
		t.Helper()
		resp, body := anthRawRequest(t, "GET", url+"/v1/messages/batches"+query, map[string]string{"x-api-key": anthTestKey}, "")
		var p page
		if err := json.Unmarshal(body, &p); resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET ?%s = %d %s, %v", query, resp.StatusCode, body, err)
		}
		return p
	}
	ids := func(p page) []string {
		var out []string
		for _, b := range p.Data {
			out = append(out, b.ID)
		}
		return out
	}
	first := list("?limit=2")
	if !slices.Equal(ids(first), newest[:2]) || !first.HasMore || *first.FirstID != newest[0] || *first.LastID != newest[1] {
		t.Errorf("first page = %+v, want %q with more, first and last ids", first, newest[:2])
	}
	if b := first.Data[0]; b.Type != "message_batch" || b.ProcessingStatus != "in_progress" || b.ResultsURL != nil || b.CreatedAt == "" {
		t.Errorf("listed batch = %+v, want a message_batch in progress, created_at set, no results_url", b)
	}
	last := list("?limit=2&after_id=" + newest[3])
	if !slices.Equal(ids(last), newest[4:]) || last.HasMore {
		t.Errorf("page after %s = %+v, want %q and no more", newest[3], last, newest[4:])
	}
	back := list("?limit=2&before_id=" + newest[3])
	if !slices.Equal(ids(back), newest[1:3]) || !back.HasMore {
		t.Errorf("page before %s = %+v, want %q with more before", newest[3], back, newest[1:3])
	}
	if top := list("?before_id=" + newest[1]); !slices.Equal(ids(top), newest[:1]) || top.HasMore {
		t.Errorf("page before %s = %+v, want %q and no more", newest[1], top, newest[:1])
	}
	empty := list("?after_id=" + newest[4])
	if len(empty.Data) != 0 || empty.HasMore || empty.FirstID != nil || empty.LastID != nil {
		t.Errorf("page after the oldest = %+v, want empty, null ids", empty)
	}

	// A batch that has ended is listed as ended, with its results' address.
	advance(time.Minute)
	if p := list("?limit=1"); p.Data[0].ProcessingStatus != "ended" || p.Data[0].ResultsURL == nil {
		t.Errorf("listed batch after BatchDelay = %+v, want ended with a results_url", p.Data[0])
	}
	if n := len(f.Batches()); n != 5 {
		t.Errorf("Batches() = %d, want 5: listing creates nothing", n)
	}
}

// A batch creation whose answer is lost still creates the batch, which runs
// like any other.
func TestAnthropicBatchHangUpAfterCreate(t *testing.T) {
	t.Parallel()
	f, url := anthServer(t, fake.AnthropicOptions{BatchDelay: -1})
	client := anthSDK(url, anthTestKey)
	ctx := context.Background()
	f.HangUpAfterBatchCreates(1)
	req := anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{anthBatchRequest("lost", anthParams("", "prompt"))}}
	if _, err := client.Messages.Batches.New(ctx, req); err == nil {
		t.Fatalf("Batches.New() with the answer lost = nil error, want one")
	}
	bs := f.Batches()
	if len(bs) != 1 || bs[0].Requests != 1 {
		t.Fatalf("Batches() = %+v, want the one batch created", bs)
	}
	f.EndBatches()
	if r := anthResults(t, client, bs[0].ID)["lost"]; r.Type != "succeeded" {
		t.Errorf("result of the batch whose answer was lost = %s, want succeeded", r.RawJSON())
	}
	if _, err := client.Messages.Batches.New(ctx, req); err != nil {
		t.Errorf("Batches.New() after the one hang-up = %v, want an answer", err)
	}
}
