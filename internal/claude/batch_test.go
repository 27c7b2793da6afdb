package claude

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/pace"
)

// waitEnded polls a batch until it has ended.
func waitEnded(t *testing.T, c *Client, b Batch) Batch {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !b.Ended() {
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still %s after 10s", b.ID, b.Status)
		}
		time.Sleep(20 * time.Millisecond)
		var err error
		if b, err = c.Batch(context.Background(), b.ID); err != nil {
			t.Fatalf("Batch(%s) error = %v", b.ID, err)
		}
	}
	return b
}

// results reads every result of an ended batch, by custom id.
func results(t *testing.T, c *Client, b Batch) map[string]BatchResult {
	t.Helper()
	out := map[string]BatchResult{}
	for r, err := range c.BatchResults(context.Background(), b) {
		if err != nil {
			t.Fatalf("BatchResults(%s) error = %v", b.ID, err)
		}
		out[r.CustomID] = r
	}
	return out
}

func TestBatch(t *testing.T) {
	t.Parallel()
	respond := func(req fake.AnthropicRequest) (any, error) {
		if strings.Contains(req.Prompt, "prose") {
			return "I think it is a bug.", nil
		}
		return fake.AnthropicSchemaResponder(req)
	}
	c, f, _ := newTestClient(t, fake.AnthropicOptions{Respond: respond, BatchDelay: 50 * time.Millisecond}, Options{})
	system := strings.Repeat("Triage issues for octo/repo. ", 150) // over the 1,024-token minimum a prefix needs to be cached
	reqs := []BatchRequest{
		{CustomID: "issue-1", Request: testRequest(system, "Issue #1: crash on start")},
		{CustomID: "issue-2", Request: testRequest(system, "Issue #2: slow start")},
		{CustomID: "issue-3", Request: testRequest(system, "Issue #3: answer in prose")},
	}
	b, n, err := c.SubmitBatch(context.Background(), reqs)
	if err != nil {
		t.Fatalf("SubmitBatch() error = %v", err)
	}
	if n != 3 || !strings.HasPrefix(b.ID, "msgbatch_") || b.Status != BatchInProgress || b.Processing != 3 || b.Ended() {
		t.Fatalf("SubmitBatch() = %+v, %d; want a batch of 3 in progress", b, n)
	}
	if want := b.CreatedAt.Add(24 * time.Hour); !b.ExpiresAt.Equal(want) {
		t.Errorf("expires at %v, want %v", b.ExpiresAt, want)
	}
	b = waitEnded(t, c, b)
	if b.Succeeded != 3 || b.EndedAt.Before(b.CreatedAt) {
		t.Errorf("ended batch = %+v, want 3 succeeded", b)
	}

	got := results(t, c, b)
	if len(got) != 3 {
		t.Fatalf("results = %d, want 3", len(got))
	}
	var ledger Usage
	for _, id := range []string{"issue-1", "issue-2"} {
		r := got[id]
		if r.Err != nil {
			t.Fatalf("result %s error = %v", id, r.Err)
		}
		var answer struct{ Kind string }
		if err := json.Unmarshal(r.Result.JSON, &answer); err != nil || answer.Kind != "bug" {
			t.Errorf("result %s JSON = %s, want the schema's answer", id, r.Result.JSON)
		}
		res := r.Result
		if res.Model != "claude-test-1" || res.StopReason != "end_turn" || res.RequestID != b.ID || res.Latency != b.EndedAt.Sub(b.CreatedAt) {
			t.Errorf("result %s = model %q stop %q request %q latency %v; want claude-test-1, end_turn, the batch id, the batch's time",
				id, res.Model, res.StopReason, res.RequestID, res.Latency)
		}
		ledger.InputTokens += res.Usage.InputTokens
		ledger.OutputTokens += res.Usage.OutputTokens
		ledger.CacheCreationInputTokens += res.Usage.CacheCreationInputTokens
		ledger.CacheReadInputTokens += res.Usage.CacheReadInputTokens
	}
	if got["issue-1"].Result.Usage.CacheCreationInputTokens == 0 || got["issue-2"].Result.Usage.CacheReadInputTokens == 0 {
		t.Errorf("usage = %+v then %+v, want a cache write then a cache read", got["issue-1"].Result.Usage, got["issue-2"].Result.Usage)
	}

	// Prose is unusable, as from Complete, but its tokens were billed.
	prose := got["issue-3"]
	var ce *Error
	if !errors.As(prose.Err, &ce) || ce.Type != TypeInvalidOutput || ce.Temporary() || ce.RequestID != b.ID {
		t.Fatalf("prose result error = %v, want a permanent invalid_output naming the batch", prose.Err)
	}
	if prose.Result.Usage.OutputTokens == 0 || prose.Result.JSON != nil {
		t.Errorf("prose result = %+v, want its usage and no JSON", prose.Result)
	}
	u := prose.Result.Usage
	ledger.InputTokens += u.InputTokens
	ledger.OutputTokens += u.OutputTokens
	ledger.CacheCreationInputTokens += u.CacheCreationInputTokens
	ledger.CacheReadInputTokens += u.CacheReadInputTokens
	fu := f.BatchUsage()["claude-test-1"]
	if want := (Usage{fu.InputTokens, fu.OutputTokens, fu.CacheCreationInputTokens, fu.CacheReadInputTokens}); ledger != want {
		t.Errorf("results' usage = %+v, the API's = %+v", ledger, want)
	}
}

func TestBatchFailedRequests(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{BatchDelay: -1}, Options{})
	f.FailNextBatchRequests("errored", "overloaded_error", 1)
	f.FailNextBatchRequests("errored", "invalid_request_error", 1)
	f.FailNextBatchRequests("expired", "", 1)
	f.FailNextBatchRequests("canceled", "", 1)
	var reqs []BatchRequest
	for _, id := range []string{"a", "b", "c", "d"} {
		reqs = append(reqs, BatchRequest{CustomID: id, Request: testRequest("", "prompt "+id)})
	}
	b, _, err := c.SubmitBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	f.EndBatches()
	b = waitEnded(t, c, b)
	got := results(t, c, b)
	tests := []struct {
		id, typ   string
		temporary bool
	}{
		{"a", "overloaded_error", true},
		{"b", "invalid_request_error", false},
		{"c", TypeBatchExpired, true},
		{"d", TypeBatchCanceled, true},
	}
	for _, tt := range tests {
		var ce *Error
		if !errors.As(got[tt.id].Err, &ce) {
			t.Errorf("result %s error = %v, want a *Error", tt.id, got[tt.id].Err)
			continue
		}
		if ce.Type != tt.typ || ce.Temporary() != tt.temporary || ce.Status != 0 {
			t.Errorf("result %s error = %v (temporary %v), want type %s, temporary %v", tt.id, ce, ce.Temporary(), tt.typ, tt.temporary)
		}
	}
	if ce := got["a"].Err.(*Error); !strings.HasPrefix(ce.RequestID, "req_") {
		t.Errorf("errored result request id = %q, want the API's", ce.RequestID)
	}
}

func TestBatchErrors(t *testing.T) {
	t.Parallel()
	c, f, srv := newTestClient(t, fake.AnthropicOptions{BatchDelay: -1}, Options{})
	ctx := context.Background()
	ok := BatchRequest{CustomID: "ok", Request: testRequest("", "prompt")}

	// Refused without a call.
	for _, reqs := range [][]BatchRequest{
		nil,
		{{CustomID: "has space", Request: ok.Request}},
		{ok, ok},
		{ok, {CustomID: "no-prompt", Request: testRequest("", "")}},
	} {
		_, n, err := c.SubmitBatch(ctx, reqs)
		var ce *Error
		if !errors.As(err, &ce) || ce.Type != TypeInvalidRequest || ce.Temporary() || n != 0 {
			t.Errorf("SubmitBatch(%d requests) = %d, %v; want a permanent invalid request", len(reqs), n, err)
		}
	}
	if got := f.Answers(); len(got) != 0 {
		t.Errorf("answers = %v, want no call for refused batches", got)
	}

	// Classified like Complete's.
	f.FailNext(529, "", 1, 2*time.Second)
	_, _, err := c.SubmitBatch(ctx, []BatchRequest{ok})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != 529 || ce.Type != "overloaded_error" || !ce.Temporary() || ce.RetryDelay() != 2*time.Second {
		t.Errorf("SubmitBatch() on 529 = %v, want a temporary overloaded_error asking for 2s", err)
	}
	f.FailNext(http.StatusTooManyRequests, "", 1, 3*time.Second)
	_, err = c.Batch(ctx, "msgbatch_x")
	if !errors.As(err, &ce) || ce.Status != 429 || ce.RetryAfterDuration() != 3*time.Second {
		t.Errorf("Batch() on 429 = %v, want a rate limit of 3s", err)
	}
	_, err = c.Batch(ctx, "msgbatch_unknown")
	if !errors.As(err, &ce) || ce.Status != 404 || ce.Temporary() {
		t.Errorf("Batch(unknown) = %v, want a permanent 404", err)
	}

	b, _, err := c.SubmitBatch(ctx, []BatchRequest{ok})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range c.BatchResults(ctx, b) {
		if !errors.As(err, &ce) || ce.Temporary() {
			t.Errorf("BatchResults() of a batch in progress = %v, want a permanent error", err)
		}
	}
	b.Status = BatchEnded // as if it had: the API refuses
	for _, err := range c.BatchResults(ctx, b) {
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Errorf("BatchResults() the API refuses = %v, want its 400", err)
		}
	}

	wrong := New(Options{APIKey: "wrong-key", BaseURL: srv.URL})
	if _, _, err := wrong.SubmitBatch(ctx, []BatchRequest{ok}); !errors.As(err, &ce) || ce.Status != 401 || ce.Temporary() {
		t.Errorf("SubmitBatch() with a wrong key = %v, want a permanent 401", err)
	}
}

func TestSubmitBatchLimits(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{BatchDelay: -1}, Options{})
	ctx := context.Background()
	var reqs []BatchRequest
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		reqs = append(reqs, BatchRequest{CustomID: id, Request: testRequest("", strings.Repeat(id, 1000))})
	}

	c.batchLimits.requests = 3
	_, n, err := c.SubmitBatch(ctx, reqs)
	if err != nil || n != 3 {
		t.Errorf("SubmitBatch(5) with a limit of 3 requests = %d, %v; want 3", n, err)
	}

	// Each request is about 1.5 KB on the wire: two fit in 4 KB.
	c.batchLimits.requests, c.batchLimits.bytes = MaxBatchRequests, 4000
	_, n, err = c.SubmitBatch(ctx, reqs)
	if err != nil || n != 2 {
		t.Errorf("SubmitBatch(5) with a limit of 4000 bytes = %d, %v; want 2", n, err)
	}
	c.batchLimits.bytes = 1000
	_, n, err = c.SubmitBatch(ctx, reqs)
	var ce *Error
	if !errors.As(err, &ce) || ce.Type != TypeInvalidRequest || n != 0 {
		t.Errorf("SubmitBatch() of a request larger than a batch = %d, %v; want an invalid request", n, err)
	}
	if bs := f.Batches(); len(bs) != 2 || bs[0].Requests != 3 || bs[1].Requests != 2 {
		t.Errorf("batches = %+v, want 3 then 2 requests", bs)
	}
}

// FitBatch counts exactly the requests SubmitBatch then sends.
func TestFitBatch(t *testing.T) {
	t.Parallel()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{BatchDelay: -1}, Options{})
	var reqs []BatchRequest
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		reqs = append(reqs, BatchRequest{CustomID: id, Request: testRequest("", strings.Repeat(id, 1000))})
	}
	c.batchLimits.bytes = 4000 // two of about 1.5 KB each
	n, err := c.FitBatch(reqs)
	if err != nil || n != 2 {
		t.Fatalf("FitBatch(5) with a limit of 4000 bytes = %d, %v; want 2", n, err)
	}
	if _, sent, err := c.SubmitBatch(context.Background(), reqs[:n]); err != nil || sent != n {
		t.Errorf("SubmitBatch(the %d that fit) = %d, %v; want all sent", n, sent, err)
	}
	bad := append([]BatchRequest{reqs[0]}, BatchRequest{CustomID: "bad id", Request: reqs[1].Request})
	var ce *Error
	if n, err := c.FitBatch(bad); !errors.As(err, &ce) || ce.Type != TypeInvalidRequest || n != 0 {
		t.Errorf("FitBatch(a bad custom id) = %d, %v; want an invalid request", n, err)
	}
	if got := len(f.Batches()); got != 1 {
		t.Errorf("batches = %d, want 1: FitBatch sends nothing", got)
	}
}

// BatchesSince follows the API's pages, newest first, and stops at the
// first batch older than asked.
func TestBatchesSince(t *testing.T) {
	t.Parallel()
	clock, advance := func() (func() time.Time, func(time.Duration)) {
		now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		var mu sync.Mutex
		return func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
			func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	}()
	c, f, _ := newTestClient(t, fake.AnthropicOptions{Now: clock, BatchDelay: -1}, Options{})
	c.batchLimits.page = 2
	ctx := context.Background()
	var made []Batch // oldest first
	for i := range 5 {
		b, _, err := c.SubmitBatch(ctx, []BatchRequest{{CustomID: fmt.Sprintf("r%d", i), Request: testRequest("", "prompt")}})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, b)
		advance(time.Minute)
	}
	ids := func(bs []Batch) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.ID)
		}
		return out
	}
	newest := ids(made)
	slices.Reverse(newest)
	for _, tt := range []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"all", time.Time{}, newest},
		{"since the third", made[2].CreatedAt, newest[:3]},
		{"since just after the third", made[2].CreatedAt.Add(time.Millisecond), newest[:2]},
		{"since now", clock(), nil},
	} {
		got, err := c.BatchesSince(ctx, tt.since)
		if err != nil || !slices.Equal(ids(got), tt.want) {
			t.Errorf("BatchesSince(%s) = %q, %v; want %q", tt.name, ids(got), err, tt.want)
		}
	}
	got, _ := c.BatchesSince(ctx, time.Time{})
	if b := got[0]; b.Status != BatchInProgress || b.Requests() != 1 || !b.CreatedAt.Equal(made[4].CreatedAt) {
		t.Errorf("listed batch = %+v, want in progress with its one request and its creation time", b)
	}
	f.EndBatches()
	got, _ = c.BatchesSince(ctx, time.Time{})
	if b := got[0]; !b.Ended() || b.Succeeded != 1 || b.Requests() != 1 {
		t.Errorf("listed batch after EndBatches = %+v, want ended with one success", b)
	}

	f.FailNext(http.StatusInternalServerError, "", 1, 0)
	var ce *Error
	if got, err := c.BatchesSince(ctx, time.Time{}); !errors.As(err, &ce) || ce.Status != 500 || got != nil {
		t.Errorf("BatchesSince() on a 500 = %d batches, %v; want none and the error: a listing is complete or nothing", len(got), err)
	}
}

// NoEffect tells the failures after which the API certainly made no batch
// from those after which it may have.
func TestBatchErrorNoEffect(t *testing.T) {
	t.Parallel()
	c, f, srv := newTestClient(t, fake.AnthropicOptions{BatchDelay: -1}, Options{})
	ctx := context.Background()
	ok := []BatchRequest{{CustomID: "ok", Request: testRequest("", "prompt")}}
	tests := []struct {
		name  string
		setup func()
		reqs  []BatchRequest
		want  bool
	}{
		{"refused before sending", nil, []BatchRequest{{CustomID: "bad id", Request: ok[0].Request}}, true},
		{"rate limited", func() { f.FailNext(http.StatusTooManyRequests, "", 1, time.Second) }, ok, true},
		{"overloaded", func() { f.FailNext(529, "", 1, 0) }, ok, true},
		{"bad request", func() { f.FailNext(http.StatusBadRequest, "", 1, 0) }, ok, true},
		{"internal error", func() { f.FailNext(http.StatusInternalServerError, "", 1, 0) }, ok, false},
		{"unavailable", func() { f.FailNext(http.StatusServiceUnavailable, "", 1, 0) }, ok, false},
		{"answer lost", func() { f.HangUpAfterBatchCreates(1) }, ok, false},
	}
	for _, tt := range tests {
		if tt.setup != nil {
			tt.setup()
		}
		_, _, err := c.SubmitBatch(ctx, tt.reqs)
		var ce *Error
		if !errors.As(err, &ce) || ce.NoEffect() != tt.want {
			t.Errorf("%s: SubmitBatch() = %v, NoEffect() want %v", tt.name, err, tt.want)
		}
	}
	if n := len(f.Batches()); n != 1 {
		t.Errorf("batches = %d, want the one whose answer was lost", n)
	}

	// Nothing listens: the request was never sent.
	closed := New(Options{APIKey: testKey, BaseURL: srv.URL})
	srv.Close()
	_, _, err := closed.SubmitBatch(ctx, ok)
	var ce *Error
	if !errors.As(err, &ce) || ce.Type != TypeNetwork || !ce.NoEffect() {
		t.Errorf("SubmitBatch() to a closed server = %v, want a network error with no effect", err)
	}
	open := &Error{Type: TypeNetwork, err: &pace.OpenError{Upstream: "anthropic", Key: batchKey, RetryAfter: time.Second}}
	if !open.NoEffect() {
		t.Errorf("NoEffect() of an open circuit = false, want true: nothing was sent")
	}
}
