package pipeline_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// batchConfig marks failed workflow runs as not urgent.
func batchConfig() config.Config {
	cfg := config.Default()
	cfg.Defaults.BatchEvents = []string{"workflow_run.completed"}
	return cfg
}

// newBatchHarness is a harness whose fake ends batches only on EndBatches
// and answers with respond (default: workflowAnswer), through client (nil:
// the default).
func newBatchHarness(t *testing.T, respond func(fake.AnthropicRequest) (any, error), client *http.Client) *harness {
	t.Helper()
	if respond == nil {
		respond = func(fake.AnthropicRequest) (any, error) { return workflowAnswer(), nil }
	}
	h := newHarnessWith(t, batchConfig(), fake.AnthropicOptions{Respond: respond, BatchDelay: -1}, client)
	h.github.AddWorkflowJobs(repo, 42, []fake.WorkflowJob{
		{Name: "test", Conclusion: "failure", Steps: []fake.WorkflowStep{{Name: "go test", Conclusion: "failure"}}},
	})
	return h
}

// requeued records the deliveries RunBatches queues again; the harness has
// no queue, so the test runs their jobs itself.
type requeued struct {
	mu  sync.Mutex
	ids []int64
}

func (q *requeued) enqueue(_ context.Context, _ *sql.Tx, id int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	return nil
}

func (q *requeued) all() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.ids)
}

func (h *harness) runBatches(t *testing.T, q *requeued) {
	t.Helper()
	if err := h.p.RunBatches(t.Context(), q.enqueue); err != nil {
		t.Fatalf("RunBatches() = %v, want nil", err)
	}
}

func TestBatchedWorkflowRun(t *testing.T) {
	t.Parallel()
	h := newBatchHarness(t, nil, nil)
	ctx := t.Context()
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))

	// Waiting: no call yet, a reservation at the batch price.
	if d := h.wantStatus(t, id, store.StatusBatched); !strings.Contains(d.Reason, "Message Batches API") {
		t.Errorf("reason = %q, want it to name the Message Batches API", d.Reason)
	}
	if n := len(h.github.Comments(repo, 5)); n != 0 || h.model.Calls() != 0 {
		t.Fatalf("%d comments and %d model calls before the batch, want none", n, h.model.Calls())
	}
	rows := h.usage(t, id)
	if len(rows) != 1 || rows[0].Outcome != "reserved" || !rows[0].Batch || rows[0].EstimateMicros <= 0 {
		t.Fatalf("ledger = %+v, want one batch reservation", rows)
	}
	// A job run again while the delivery waits leaves it waiting.
	if err := h.p.Process(ctx, id, "job-again"); err != nil {
		t.Fatal(err)
	}
	if err := h.st.SetDeliveryStatus(ctx, id, store.StatusQueued, "replayed"); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Process(ctx, id, "job-replay"); err != nil {
		t.Fatal(err)
	}
	h.wantStatus(t, id, store.StatusBatched)
	if rows := h.usage(t, id); len(rows) != 1 {
		t.Errorf("ledger after running again = %d rows, want 1", len(rows))
	}

	q := &requeued{}
	h.runBatches(t, q) // submits
	h.runBatches(t, q) // in progress: nothing to do
	batches := h.model.Batches()
	if len(batches) != 1 || batches[0].Requests != 1 || batches[0].Ended || len(q.all()) != 0 {
		t.Fatalf("batches = %+v, requeued %v; want one batch of one request in progress, nothing requeued", batches, q.all())
	}
	if it, _ := h.st.BatchItemOf(ctx, id); it.State != store.BatchSubmitted || it.BatchID != batches[0].ID {
		t.Errorf("item = %s in %q, want submitted in %s", it.State, it.BatchID, batches[0].ID)
	}

	h.model.EndBatches()
	h.runBatches(t, q)
	h.runBatches(t, q) // applying again changes nothing
	if got := q.all(); !slices.Equal(got, []int64{id}) {
		t.Fatalf("requeued = %v, want [%d] once", got, id)
	}
	h.wantStatus(t, id, store.StatusQueued)
	a, err := h.st.Analysis(ctx, id)
	if err != nil || !strings.Contains(a.Result, "Inject the clock.") || a.RequestID != batches[0].ID {
		t.Fatalf("Analysis = %+v, %v; want the batch's answer", a, err)
	}

	// Half price, and exactly what the API reported.
	reqs := h.model.Requests()
	if len(reqs) != 1 || !reqs[0].Batch || !strings.Contains(reqs[0].Prompt, "go test") {
		t.Fatalf("model requests = %+v, want one batched request with the failed step", reqs)
	}
	model := reqs[0].Model
	u := h.model.BatchUsage()[model]
	billed := cost.Usage{Input: u.InputTokens, Output: u.OutputTokens, CacheWrite: u.CacheCreationInputTokens, CacheRead: u.CacheReadInputTokens}
	rows = h.usage(t, id)
	want := cost.For(model).Batch().Micros(billed)
	if len(rows) != 1 || rows[0].Outcome != "ok" || !rows[0].Batch || rows[0].CostMicros != want || a.CostMicros != want {
		t.Errorf("ledger = %+v (analysis %d), want one batch call of %d micros", rows, a.CostMicros, want)
	}
	if full := cost.For(model).Micros(billed); want*2 < full-1 || want*2 > full+1 {
		t.Errorf("batch cost %d, full price %d: want half", want, full)
	}
	if rows[0].Input != u.InputTokens || rows[0].Output != u.OutputTokens {
		t.Errorf("ledger tokens = %d in, %d out; the API reported %d, %d", rows[0].Input, rows[0].Output, u.InputTokens, u.OutputTokens)
	}

	// The new job acts on the stored answer.
	if err := h.p.Process(ctx, id, "job-2"); err != nil {
		t.Fatal(err)
	}
	h.wantStatus(t, id, store.StatusDone)
	if c := h.onlyComment(t, 5); !strings.Contains(c.Body, "Inject the clock.") {
		t.Errorf("comment = %q, want the batch's answer", c.Body)
	}
	if h.model.Calls() != 1 {
		t.Errorf("model calls = %d, want the one batched request", h.model.Calls())
	}

	// A replay asks afresh, through a new batch.
	if err := h.st.Tx(ctx, func(tx *sql.Tx) error { return h.st.ForgetAnalysisTx(ctx, tx, id) }); err != nil {
		t.Fatal(err)
	}
	if err := h.st.SetDeliveryStatus(ctx, id, store.StatusQueued, "replayed"); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Process(ctx, id, "job-3"); err != nil {
		t.Fatal(err)
	}
	h.wantStatus(t, id, store.StatusBatched)
	if it, _ := h.st.BatchItemOf(ctx, id); it.State != store.BatchPending {
		t.Errorf("item after a replay = %s, want pending", it.State)
	}
}

func TestBatchFailureFallsBackToMessagesAPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		setup       func(h *harness)
		respond     func(fake.AnthropicRequest) (any, error)
		wantOutcome string
		wantBilled  bool // the failed request's tokens are billed
	}{
		{name: "errored", setup: func(h *harness) { h.model.FailNextBatchRequests("errored", "overloaded_error", 1) }, wantOutcome: "overloaded_error"},
		{name: "expired", setup: func(h *harness) { h.model.FailNextBatchRequests("expired", "", 1) }, wantOutcome: "batch_expired"},
		// The API refuses the batch itself, for good.
		{name: "refused", setup: func(h *harness) { h.model.FailNext(http.StatusBadRequest, "", 1, 0) }, wantOutcome: "invalid_request_error"},
		{name: "invalid output", respond: func(req fake.AnthropicRequest) (any, error) {
			if req.Batch {
				return "The tests failed, I think.", nil
			}
			return workflowAnswer(), nil
		}, wantOutcome: "invalid_output", wantBilled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newBatchHarness(t, tt.respond, nil)
			if tt.setup != nil {
				tt.setup(h)
			}
			id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
			q := &requeued{}
			h.runBatches(t, q)
			h.model.EndBatches()
			h.runBatches(t, q)
			if got := q.all(); !slices.Equal(got, []int64{id}) {
				t.Fatalf("requeued = %v, want [%d]", got, id)
			}
			if d := h.wantStatus(t, id, store.StatusQueued); !strings.Contains(d.Reason, "Messages API") {
				t.Errorf("reason = %q, want it to say the Messages API answers", d.Reason)
			}
			if it, _ := h.st.BatchItemOf(t.Context(), id); it.State != store.BatchFailed || it.Error == "" {
				t.Errorf("item = %+v, want failed with its error", it)
			}

			if err := h.p.Process(t.Context(), id, "job-2"); err != nil {
				t.Fatal(err)
			}
			h.wantStatus(t, id, store.StatusDone)
			if c := h.onlyComment(t, 5); !strings.Contains(c.Body, "Inject the clock.") {
				t.Errorf("comment = %q, want the Messages API's answer", c.Body)
			}
			var sync []fake.AnthropicRequest
			for _, r := range h.model.Requests() {
				if !r.Batch {
					sync = append(sync, r)
				}
			}
			if len(sync) != 1 {
				t.Errorf("Messages API requests = %d, want 1", len(sync))
			}
			rows := h.usage(t, id)
			if len(rows) != 2 {
				t.Fatalf("ledger = %+v, want the failed batch request and the Messages API call", rows)
			}
			failed, answered := rows[0], rows[1]
			if !failed.Batch || failed.Outcome != tt.wantOutcome || (failed.CostMicros > 0) != tt.wantBilled {
				t.Errorf("failed batch request in the ledger = %+v, want outcome %s, billed %v", failed, tt.wantOutcome, tt.wantBilled)
			}
			if tt.wantBilled {
				u := h.model.BatchUsage()[failed.Model]
				billed := cost.Usage{Input: u.InputTokens, Output: u.OutputTokens, CacheWrite: u.CacheCreationInputTokens, CacheRead: u.CacheReadInputTokens}
				if want := cost.For(failed.Model).Batch().Micros(billed); failed.CostMicros != want {
					t.Errorf("failed batch request cost %d, want %d at the batch price", failed.CostMicros, want)
				}
			}
			if answered.Batch || answered.Outcome != "ok" || answered.CostMicros <= 0 {
				t.Errorf("Messages API call in the ledger = %+v, want a settled call at full price", answered)
			}
			// It is not batched again.
			batches := len(h.model.Batches())
			if err := h.st.SetDeliveryStatus(t.Context(), id, store.StatusQueued, "replayed"); err != nil {
				t.Fatal(err)
			}
			if err := h.st.Tx(t.Context(), func(tx *sql.Tx) error { return h.st.ForgetAnalysisTx(t.Context(), tx, id) }); err != nil {
				t.Fatal(err)
			}
			if err := h.p.Process(t.Context(), id, "job-3"); err != nil {
				t.Fatal(err)
			}
			h.wantStatus(t, id, store.StatusDone)
			if n := len(h.model.Batches()); n != batches {
				t.Errorf("batches after a replay = %d, want still %d: a delivery whose batch failed uses the Messages API", n, batches)
			}
		})
	}
}

// failRecording makes recording a batch's id fail, as a full disk or a lost
// database would, until the returned func is called.
func failRecording(t *testing.T, h *harness) (restore func()) {
	t.Helper()
	_, err := h.st.DB.ExecContext(t.Context(), `CREATE TRIGGER fail_record BEFORE UPDATE OF batch_id ON hw_batch_items
		WHEN NEW.batch_id <> '' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END`)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := h.st.DB.ExecContext(t.Context(), `DROP TRIGGER fail_record`); err != nil {
			t.Fatal(err)
		}
	}
}

// A batch the API created but hookwise did not record (the answer to the
// create was lost, or recording its id failed) is found in the API's list
// of batches and adopted: its requests are never submitted again, each
// answered once, and counted once.
func TestBatchCreatedButNotRecorded(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		crash func(t *testing.T, h *harness) (recover func())
	}{
		{"answer to the create lost", func(t *testing.T, h *harness) func() {
			h.model.HangUpAfterBatchCreates(1)
			return func() {}
		}},
		{"recording the batch fails", failRecording},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newBatchHarness(t, nil, nil)
			ctx := t.Context()
			id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
			q := &requeued{}
			recover := tt.crash(t, h)
			if err := h.p.RunBatches(ctx, q.enqueue); err == nil {
				t.Fatalf("RunBatches() with the batch unrecorded = nil, want the error")
			}
			recover()
			age(t, h, 11*time.Minute) // long enough that only the listing holds it back
			it, _ := h.st.BatchItemOf(ctx, id)
			if it.State != store.BatchSubmitting || it.BatchID != "" || len(h.model.Batches()) != 1 {
				t.Fatalf("item = %s in %q with %d batches made; want submitting, unrecorded, after the one batch the API made", it.State, it.BatchID, len(h.model.Batches()))
			}

			// While the batch runs, hookwise cannot tell it is its own: it
			// waits, and submits nothing.
			h.runBatches(t, q)
			h.runBatches(t, q)
			if n := len(h.model.Batches()); n != 1 {
				t.Fatalf("batches while the unrecorded one runs = %d, want 1", n)
			}
			h.wantStatus(t, id, store.StatusBatched)

			h.model.EndBatches()
			h.runBatches(t, q) // adopts it and applies its results
			h.runBatches(t, q)
			batches := h.model.Batches()
			if len(batches) != 1 {
				t.Fatalf("batches = %d, want 1: the requests are paid for once", len(batches))
			}
			if got := q.all(); !slices.Equal(got, []int64{id}) {
				t.Errorf("requeued = %v, want [%d] once", got, id)
			}
			if it, _ := h.st.BatchItemOf(ctx, id); it.State != store.BatchDone || it.BatchID != batches[0].ID {
				t.Errorf("item = %s in %s, want done in the adopted batch %s", it.State, it.BatchID, batches[0].ID)
			}
			if err := h.p.Process(ctx, id, "job-2"); err != nil {
				t.Fatal(err)
			}
			h.wantStatus(t, id, store.StatusDone)
			if c := h.onlyComment(t, 5); !strings.Contains(c.Body, "Inject the clock.") {
				t.Errorf("comment = %q, want the adopted batch's answer", c.Body)
			}
			if h.model.Calls() != 1 {
				t.Errorf("model calls = %d, want the one batched request", h.model.Calls())
			}
			rows := h.usage(t, id)
			u := h.model.BatchUsage()[rows[0].Model]
			if len(rows) != 1 || rows[0].Outcome != "ok" || u.Calls != 1 || rows[0].Input != u.InputTokens || rows[0].Output != u.OutputTokens {
				t.Errorf("ledger = %+v, the API billed %+v; want one settled call, as billed", rows, u)
			}
		})
	}
}

// holdBatchCreates fails batch creations without sending them while held:
// the client cannot tell whether the API made the batch, as after a crash
// between recording a submission's intent and its create reaching the API.
type holdBatchCreates struct {
	held atomic.Bool
}

func (d *holdBatchCreates) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.held.Load() && r.Method == http.MethodPost && r.URL.Path == "/v1/messages/batches" {
		return nil, errors.New("connection reset")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// unsent leaves delivery id's request in a submission whose create never
// reached the API, and returns that submission's custom id for it.
func unsent(t *testing.T, h *harness, hold *holdBatchCreates, q *requeued, id int64) string {
	t.Helper()
	hold.held.Store(true)
	if err := h.p.RunBatches(t.Context(), q.enqueue); err == nil {
		t.Fatalf("RunBatches() with the create lost = nil, want the error")
	}
	hold.held.Store(false)
	it, err := h.st.BatchItemOf(t.Context(), id)
	if err != nil || it.State != store.BatchSubmitting || !strings.HasPrefix(it.CustomID, "hw-") {
		t.Fatalf("item = %+v, %v; want submitting under a custom id", it, err)
	}
	return it.CustomID
}

// age makes every unrecorded submission look recorded d ago.
func age(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	_, err := h.st.DB.ExecContext(t.Context(), `UPDATE hw_batch_items SET attempted_at = attempted_at - ? WHERE state = ?`,
		d.Milliseconds(), store.BatchSubmitting)
	if err != nil {
		t.Fatal(err)
	}
}

// A submission whose create never reached the API is submitted again once
// the API's list of batches shows no batch could be its own, and a create
// sent then has had time to land: once, under new custom ids.
func TestBatchIntentWithoutBatchIsSubmittedAgain(t *testing.T) {
	t.Parallel()
	hold := &holdBatchCreates{}
	h := newBatchHarness(t, nil, &http.Client{Transport: hold})
	ctx := t.Context()
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	q := &requeued{}
	first := unsent(t, h, hold, q, id)

	// Just after the crash, a create might still land: it waits.
	h.runBatches(t, q)
	if n := len(h.model.Batches()); n != 0 {
		t.Fatalf("batches right after the lost create = %d, want 0", n)
	}
	if it, _ := h.st.BatchItemOf(ctx, id); it.State != store.BatchSubmitting || it.CustomID != first {
		t.Fatalf("item = %+v, want still submitting as %s", it, first)
	}

	age(t, h, 11*time.Minute)
	h.runBatches(t, q) // releases it and submits it again
	h.runBatches(t, q)
	batches := h.model.Batches()
	if len(batches) != 1 || batches[0].Requests != 1 {
		t.Fatalf("batches = %+v, want one of the request", batches)
	}
	it, _ := h.st.BatchItemOf(ctx, id)
	if it.State != store.BatchSubmitted || it.BatchID != batches[0].ID || it.CustomID == first || !strings.HasPrefix(it.CustomID, "hw-") {
		t.Fatalf("item = %+v, want submitted in %s under a new custom id", it, batches[0].ID)
	}
	h.model.EndBatches()
	h.runBatches(t, q)
	if got := q.all(); !slices.Equal(got, []int64{id}) {
		t.Errorf("requeued = %v, want [%d] once", got, id)
	}
	if rows := h.usage(t, id); len(rows) != 1 || rows[0].Outcome != "ok" || h.model.Calls() != 1 {
		t.Errorf("ledger = %+v with %d model calls, want one settled call", rows, h.model.Calls())
	}
}

// A create the API refused for now (overloaded) made no batch: its requests
// are submitted again next round, without waiting.
func TestBatchCreateRefusedForNow(t *testing.T) {
	t.Parallel()
	h := newBatchHarness(t, nil, nil)
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	q := &requeued{}
	h.model.FailNext(529, "", 1, 0)
	if err := h.p.RunBatches(t.Context(), q.enqueue); err == nil {
		t.Fatalf("RunBatches() with the API overloaded = nil, want the error")
	}
	if it, _ := h.st.BatchItemOf(t.Context(), id); it.State != store.BatchPending || it.CustomID != "" {
		t.Fatalf("item after a 529 = %+v, want pending again", it)
	}
	h.runBatches(t, q)
	if bs := h.model.Batches(); len(bs) != 1 {
		t.Fatalf("batches = %+v, want one", bs)
	}
	if it, _ := h.st.BatchItemOf(t.Context(), id); it.State != store.BatchSubmitted {
		t.Errorf("item = %s, want submitted", it.State)
	}
}

// otherTool is another program using hookwise's API key: its batches are in
// the API's list too.
func otherTool(t *testing.T, h *harness) *claude.Client {
	t.Helper()
	srv := httptest.NewServer(h.model)
	t.Cleanup(srv.Close)
	return claude.New(claude.Options{APIKey: modelKey, BaseURL: srv.URL})
}

// foreignAnswer is what the model answers another tool's requests with.
const foreignAnswer = "Someone else's answer."

// respondByPrompt answers requests whose prompt says "other tool" with
// foreignAnswer, and the rest as hookwise expects.
func respondByPrompt(req fake.AnthropicRequest) (any, error) {
	a := workflowAnswer()
	if strings.Contains(req.Prompt, "other tool") {
		a["likely_cause"] = foreignAnswer
	}
	return a, nil
}

// Another tool's batches, created after hookwise's unrecorded submission,
// the same size, with custom ids that look like hookwise's (the format
// hookwise used before, and the current format with another attempt), are
// never adopted: the submission waits while they run, then is submitted
// again, and their answers are never stored.
func TestBatchOfAnotherToolIsNeverAdopted(t *testing.T) {
	t.Parallel()
	hold := &holdBatchCreates{}
	h := newBatchHarness(t, respondByPrompt, &http.Client{Transport: hold})
	ctx := t.Context()
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	q := &requeued{}
	ours := unsent(t, h, hold, q, id)
	it, _ := h.st.BatchItemOf(ctx, id)
	other := otherTool(t, h)
	near := []byte(ours) // one letter of the attempt changed
	near[len("hw-")] = map[bool]byte{true: 'B', false: 'C'}[near[len("hw-")] != 'B']
	lookalikes := []string{
		fmt.Sprintf("delivery-%d-%d", id, it.UsageID),
		fmt.Sprintf("hw-%s-%d", strings.Repeat("A", 26), id),
		string(near),
	}
	for _, cid := range lookalikes {
		if _, _, err := other.SubmitBatch(ctx, []claude.BatchRequest{{CustomID: cid, Request: claude.Request{
			Model: "claude-sonnet-4-5", Prompt: "A request of the other tool.", MaxTokens: 1024,
			Schema: map[string]any{"type": "object"}}}}); err != nil {
			t.Fatal(err)
		}
	}

	// They run: any could be hookwise's, for all it can tell yet.
	age(t, h, 11*time.Minute)
	h.runBatches(t, q)
	if n := len(h.model.Batches()); n != len(lookalikes) {
		t.Fatalf("batches while the other tool's run = %d, want only its %d", n, len(lookalikes))
	}
	if it, _ := h.st.BatchItemOf(ctx, id); it.State != store.BatchSubmitting {
		t.Fatalf("item = %s, want still submitting", it.State)
	}

	// They end, and their results are not hookwise's.
	h.model.EndBatches()
	h.runBatches(t, q)
	batches := h.model.Batches()
	if len(batches) != len(lookalikes)+1 {
		t.Fatalf("batches = %d, want the other tool's %d and hookwise's own", len(batches), len(lookalikes))
	}
	it, _ = h.st.BatchItemOf(ctx, id)
	if mine := batches[len(batches)-1].ID; it.State != store.BatchSubmitted || it.BatchID != mine {
		t.Fatalf("item = %s in %s, want submitted in its own batch %s", it.State, it.BatchID, mine)
	}
	if _, err := h.st.Analysis(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Analysis before hookwise's batch ended = %v, want none", err)
	}
	h.model.EndBatches()
	h.runBatches(t, q)
	a, err := h.st.Analysis(ctx, id)
	if err != nil || strings.Contains(a.Result, foreignAnswer) || !strings.Contains(a.Result, "Inject the clock.") {
		t.Errorf("Analysis = %+v, %v; want hookwise's own answer", a, err)
	}
	if got := q.all(); !slices.Equal(got, []int64{id}) {
		t.Errorf("requeued = %v, want [%d] once", got, id)
	}
}

// A batch of another size cannot be a submission's: while it runs, the
// submission is not held back.
func TestBatchOfAnotherSizeDoesNotHoldBack(t *testing.T) {
	t.Parallel()
	hold := &holdBatchCreates{}
	h := newBatchHarness(t, nil, &http.Client{Transport: hold})
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	q := &requeued{}
	unsent(t, h, hold, q, id)
	req := claude.Request{Model: "claude-sonnet-4-5", Prompt: "A request of the other tool.", MaxTokens: 1024, Schema: map[string]any{"type": "object"}}
	if _, _, err := otherTool(t, h).SubmitBatch(t.Context(), []claude.BatchRequest{{CustomID: "x1", Request: req}, {CustomID: "x2", Request: req}}); err != nil {
		t.Fatal(err)
	}
	age(t, h, 11*time.Minute)
	h.runBatches(t, q)
	bs := h.model.Batches()
	if it, _ := h.st.BatchItemOf(t.Context(), id); len(bs) != 2 || it.State != store.BatchSubmitted || it.BatchID != bs[1].ID {
		t.Errorf("item = %s in %q with batches %+v; want submitted again in a batch of its own", it.State, it.BatchID, bs)
	}
}

// An item submitted before custom ids were recorded is collected under the
// custom id it was sent with: its delivery and reservation ids.
func TestBatchSubmittedBeforeCustomIDsWereRecorded(t *testing.T) {
	t.Parallel()
	h := newBatchHarness(t, nil, nil)
	ctx := t.Context()
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	it, _ := h.st.BatchItemOf(ctx, id)
	var br struct {
		Model, System, Prompt string
		Schema                map[string]any
		MaxTokens             int `json:"max_tokens"`
	}
	if err := json.Unmarshal([]byte(it.Request), &br); err != nil {
		t.Fatal(err)
	}
	b, _, err := otherTool(t, h).SubmitBatch(ctx, []claude.BatchRequest{{CustomID: fmt.Sprintf("delivery-%d-%d", id, it.UsageID),
		Request: claude.Request{Model: br.Model, System: br.System, Prompt: br.Prompt, Schema: br.Schema, MaxTokens: br.MaxTokens}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.DB.ExecContext(ctx, `UPDATE hw_batch_items SET state = ?, batch_id = ? WHERE id = ?`, store.BatchSubmitted, b.ID, it.ID); err != nil {
		t.Fatal(err)
	}
	h.model.EndBatches()
	q := &requeued{}
	h.runBatches(t, q)
	if it, _ := h.st.BatchItemOf(ctx, id); it.State != store.BatchDone {
		t.Fatalf("item = %s (%s), want done", it.State, it.Error)
	}
	if a, err := h.st.Analysis(ctx, id); err != nil || !strings.Contains(a.Result, "Inject the clock.") {
		t.Errorf("Analysis = %+v, %v; want the batch's answer", a, err)
	}
}

// A batch holding a submission's custom ids is adopted, but a result whose
// custom id names a delivery that is not in the submission (here one
// received but not yet handled) is ignored: no answer, no ledger row, no
// job for it.
func TestBatchResultsForOtherDeliveriesAreIgnored(t *testing.T) {
	t.Parallel()
	hold := &holdBatchCreates{}
	h := newBatchHarness(t, respondByPrompt, &http.Client{Transport: hold})
	ctx := t.Context()
	h.github.AddWorkflowJobs(repo, 43, []fake.WorkflowJob{{Name: "lint", Conclusion: "failure"}})
	a := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	b := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 43, "CI", "failure", headSHA, 6))
	q := &requeued{}
	hold.held.Store(true)
	if err := h.p.RunBatches(ctx, q.enqueue); err == nil {
		t.Fatal("RunBatches() with the create lost = nil, want the error")
	}
	hold.held.Store(false)
	stranger := h.deliver(t, "workflow_run", fake.WorkflowRunEvent(repo, 44, "CI", "failure", headSHA, 7))
	untouched := h.delivery(t, stranger)
	itA, _ := h.st.BatchItemOf(ctx, a)
	attempt := strings.TrimSuffix(strings.TrimPrefix(itA.CustomID, "hw-"), fmt.Sprintf("-%d", a))

	// The listing shows a batch, as large as the submission, holding a's
	// custom id and one in its format for the stranger.
	other := otherTool(t, h)
	req := claude.Request{Model: "claude-sonnet-4-5", Prompt: "Asked by the other tool.", MaxTokens: 1024, Schema: map[string]any{"type": "object"}}
	if _, _, err := other.SubmitBatch(ctx, []claude.BatchRequest{
		{CustomID: itA.CustomID, Request: req},
		{CustomID: fmt.Sprintf("hw-%s-%d", attempt, stranger), Request: req},
	}); err != nil {
		t.Fatal(err)
	}
	h.model.EndBatches()
	h.runBatches(t, q)

	if _, err := h.st.Analysis(ctx, stranger); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Analysis of a delivery not in the submission = %v, want none", err)
	}
	if rows := h.usage(t, stranger); len(rows) != 0 {
		t.Errorf("ledger of a delivery not in the submission = %+v, want none", rows)
	}
	if d := h.delivery(t, stranger); d.Status != untouched.Status || d.Reason != untouched.Reason {
		t.Errorf("delivery not in the submission = %s (%s), want untouched: %s (%s)", d.Status, d.Reason, untouched.Status, untouched.Reason)
	}
	got := q.all()
	slices.Sort(got)
	if !slices.Equal(got, []int64{a, b}) {
		t.Errorf("requeued = %v, want the submission's %v only", got, []int64{a, b})
	}
	// b has no result in that batch: the Messages API answers it.
	if it, _ := h.st.BatchItemOf(ctx, b); it.State != store.BatchFailed {
		t.Errorf("item of b = %s, want failed (no result in the adopted batch)", it.State)
	}
	if n := len(h.model.Batches()); n != 1 {
		t.Errorf("batches = %d, want the one adopted", n)
	}
}

// Two rounds collecting the same ended batch at once apply each result once.
func TestBatchResultsAppliedOnce(t *testing.T) {
	t.Parallel()
	h := newBatchHarness(t, nil, nil)
	var ids []int64
	for run := range 5 {
		h.github.AddWorkflowJobs(repo, int64(100+run), []fake.WorkflowJob{{Name: "test", Conclusion: "failure"}})
		ids = append(ids, h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, int64(100+run), "CI", "failure", headSHA, 5)))
	}
	q := &requeued{}
	h.runBatches(t, q)
	if bs := h.model.Batches(); len(bs) != 1 || bs[0].Requests != 5 {
		t.Fatalf("batches = %+v, want one of 5 requests", bs)
	}
	h.model.EndBatches()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := h.p.RunBatches(t.Context(), q.enqueue); err != nil {
				t.Errorf("RunBatches() = %v", err)
			}
		})
	}
	wg.Wait()
	got := q.all()
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("requeued = %v, want each of %v once", got, ids)
	}
	for _, id := range ids {
		if rows := h.usage(t, id); len(rows) != 1 || rows[0].Outcome != "ok" {
			t.Errorf("ledger of delivery %d = %+v, want one settled call", id, rows)
		}
	}
}

// Events not in batch_events, and repositories without it, use the
// Messages API.
func TestUnbatchedEventsUseMessagesAPI(t *testing.T) {
	t.Parallel()
	h := newBatchHarness(t, nil, nil)
	id := h.process(t, "issues", fake.IssueEvent("opened", repo, 3, "Crash on start", "The service panics on start-up with an empty config file.", "alice"))
	h.wantStatus(t, id, store.StatusDone)
	if n := len(h.model.Batches()); n != 0 {
		t.Errorf("batches = %d, want 0", n)
	}
	if rows := h.usage(t, id); len(rows) != 1 || rows[0].Batch {
		t.Errorf("ledger = %+v, want one Messages API call", rows)
	}
}
