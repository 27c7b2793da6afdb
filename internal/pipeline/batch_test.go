package pipeline_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

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

// dropFirstBatch loses the answer to the first batch creation after the
// API made the batch, as a crash or a timeout would.
type dropFirstBatch struct {
	dropped atomic.Bool
}

func (d *dropFirstBatch) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && r.URL.Path == "/v1/messages/batches" && d.dropped.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("connection reset after the batch was created")
	}
	return resp, err
}

// A batch the API created but hookwise did not record loses nothing: its
// requests are submitted again, and answered once.
func TestBatchSubmittedButNotRecorded(t *testing.T) {
	t.Parallel()
	h := newBatchHarness(t, nil, &http.Client{Transport: &dropFirstBatch{}})
	id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, 5))
	q := &requeued{}
	if err := h.p.RunBatches(t.Context(), q.enqueue); err == nil {
		t.Fatalf("RunBatches() with the answer lost = nil, want the error")
	}
	if it, _ := h.st.BatchItemOf(t.Context(), id); it.State != store.BatchPending || len(h.model.Batches()) != 1 {
		t.Fatalf("item = %s with %d batches made, want pending after one batch the API made", it.State, len(h.model.Batches()))
	}
	h.runBatches(t, q)
	h.model.EndBatches()
	h.runBatches(t, q)
	batches := h.model.Batches()
	if len(batches) != 2 {
		t.Fatalf("batches = %d, want 2", len(batches))
	}
	if got := q.all(); !slices.Equal(got, []int64{id}) {
		t.Errorf("requeued = %v, want [%d] once", got, id)
	}
	if it, _ := h.st.BatchItemOf(t.Context(), id); it.State != store.BatchDone || it.BatchID != batches[1].ID {
		t.Errorf("item = %s in %s, want done in the recorded batch %s", it.State, it.BatchID, batches[1].ID)
	}
	if rows := h.usage(t, id); len(rows) != 1 || rows[0].Outcome != "ok" {
		t.Errorf("ledger = %+v, want one settled call", rows)
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
