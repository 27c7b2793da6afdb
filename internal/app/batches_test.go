package app_test

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// Acceptance (Message Batches API): with workflow_run.completed in
// batch_events, a failed run is explained through a batch, at half price,
// once the periodic job collects it; issues in the same run still go
// through the Messages API; and the ledger equals what the API reported,
// each call at its own price.
func TestBatchedWorkflowRunIsExplainedAtHalfPrice(t *testing.T) {
	t.Parallel()
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{apptest.GitHubToken}, RateLimit: 1_000_000})
	github.AddPullRequest("acme/app", 7, nil)
	github.AddWorkflowJobs("acme/app", 9001, []fake.WorkflowJob{
		{Name: "build", Conclusion: "success"},
		{Name: "test", Conclusion: "failure", Steps: []fake.WorkflowStep{{Name: "go test ./...", Conclusion: "failure"}}},
	})
	// Batches end when the test says, so that it sees the run wait.
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: apptest.ModelKey, BatchDelay: -1,
		RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	h := startWith(t, github, model, func(c *config.Config) {
		c.Defaults.BatchEvents = []string{"workflow_run.completed"}
		c.Defaults.Context = repoContext
		c.Anthropic.BatchInterval = config.Duration(200 * time.Millisecond)
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})

	client := &http.Client{Timeout: 30 * time.Second}
	send := func(d fake.Delivery) {
		t.Helper()
		if code, err := fake.Send(client, h.endpoint, secret, d); err != nil || code != http.StatusAccepted {
			t.Fatalf("send %s = %d, %v", d.GUID, code, err)
		}
	}
	send(fake.Delivery{Event: "workflow_run", GUID: "run-9001", HookID: "42",
		Payload: fake.WorkflowRunEvent("acme/app", 9001, "CI", "failure", "3f786850e387550fdab836ed7e6dc881de23001b", 7)})
	const issues = 3
	for i := 1; i <= issues; i++ {
		send(fake.Delivery{Event: "issues", GUID: fmt.Sprintf("issue-%d", i), HookID: "42",
			Payload: fake.IssueEvent("opened", "acme/app", 100+i, fmt.Sprintf("Planner crash %d", i),
				fmt.Sprintf("Version 3.2 on Linux amd64: the planner panics with a nil map when job %d has no schedule.", i), "alice")})
	}

	// The issues are answered at once; the run waits in a submitted batch.
	run := waitFor(t, h, "run-9001", 30*time.Second, func(d store.Delivery) bool {
		return d.Status == store.StatusBatched && len(model.Batches()) == 1
	})
	if !strings.Contains(run.Reason, "Message Batches API") {
		t.Errorf("reason of the waiting run = %q, want it to name the Message Batches API", run.Reason)
	}
	for i := 1; i <= issues; i++ {
		waitFor(t, h, fmt.Sprintf("issue-%d", i), 30*time.Second, func(d store.Delivery) bool { return d.Status == store.StatusDone })
	}
	if n := len(github.Comments("acme/app", 7)); n != 0 {
		t.Fatalf("comments on #7 while the batch runs = %d, want 0", n)
	}

	model.EndBatches()
	run = waitFor(t, h, "run-9001", 30*time.Second, func(d store.Delivery) bool { return d.Status == store.StatusDone })
	cs := github.Comments("acme/app", 7)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, "<!-- hookwise:workflow-run-analysis acme/app#7 run 9001 -->") {
		t.Fatalf("comments on #7 = %+v, want the explanation of run 9001", cs)
	}

	batches := model.Batches()
	if len(batches) != 1 || batches[0].Requests != 1 || batches[0].Succeeded != 1 {
		t.Errorf("batches = %+v, want one of the run's request", batches)
	}
	var batched, direct int
	for _, r := range model.Requests() {
		if r.Batch {
			batched++
			if !strings.Contains(r.Prompt, "go test ./...") {
				t.Errorf("batched prompt lacks the failed step: %q", r.Prompt)
			}
		} else {
			direct++
		}
	}
	if batched != 1 || direct != issues {
		t.Errorf("model requests: %d batched, %d direct; want 1 and %d", batched, direct, issues)
	}

	// The run's ledger row: a batch call at half price, equal to what the
	// API reported for the batch at batch prices.
	rows, err := h.app.Store.UsageOf(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	prices := cost.NewTable(nil)
	var batchReported, syncReported float64
	for m, u := range model.BatchUsage() {
		p := prices.For(m).Batch()
		batchReported += float64(u.InputTokens)*p.Input + float64(u.OutputTokens)*p.Output +
			float64(u.CacheCreationInputTokens)*p.CacheWrite + float64(u.CacheReadInputTokens)*p.CacheRead
	}
	if len(rows) != 1 || !rows[0].Batch || rows[0].Outcome != "ok" || math.Abs(float64(rows[0].CostMicros)-batchReported) > 1 {
		t.Fatalf("ledger of the run = %+v, want one batch call of %.0f micros", rows, batchReported)
	}
	full := prices.For(rows[0].Model).Micros(cost.Usage{Input: rows[0].Input, Output: rows[0].Output,
		CacheWrite: rows[0].CacheWrite, CacheRead: rows[0].CacheRead})
	if math.Abs(float64(2*rows[0].CostMicros-full)) > 1 {
		t.Errorf("batch call cost %s, %s at full price: want half", cost.Dollars(rows[0].CostMicros), cost.Dollars(full))
	}

	// Every call at its own price: the whole ledger equals the API's usage.
	total := model.Usage()
	for m, u := range model.BatchUsage() {
		rest := total[m]
		rest.InputTokens -= u.InputTokens
		rest.OutputTokens -= u.OutputTokens
		rest.CacheCreationInputTokens -= u.CacheCreationInputTokens
		rest.CacheReadInputTokens -= u.CacheReadInputTokens
		total[m] = rest
	}
	for m, u := range total {
		p := prices.For(m)
		syncReported += float64(u.InputTokens)*p.Input + float64(u.OutputTokens)*p.Output +
			float64(u.CacheCreationInputTokens)*p.CacheWrite + float64(u.CacheReadInputTokens)*p.CacheRead
	}
	_, sum, err := h.app.Store.Costs(t.Context(), store.CostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if want := batchReported + syncReported; math.Abs(float64(sum.CostMicros)-want) > float64(issues+1) {
		t.Errorf("ledger total = %d micros, the API's usage at its prices = %.0f", sum.CostMicros, want)
	}
	if sum.Calls != issues+1 {
		t.Errorf("ledger calls = %d, want %d", sum.Calls, issues+1)
	}
}

// waitFor waits until the delivery with guid satisfies ok, and returns it.
func waitFor(t *testing.T, h *harness, guid string, limit time.Duration, ok func(store.Delivery) bool) store.Delivery {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d, err := h.app.Store.FindDelivery(t.Context(), guid)
		if err == nil && ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: delivery %s is %s (%s), %v", limit, guid, d.Status, d.Reason, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Acceptance (a batch created but not recorded): the answer to the create
// is lost after the API made the batch. The service never submits the run's
// request again: it finds the batch in the API's list, waits while it runs,
// adopts it when it ends, and explains the run once, billed once.
func TestBatchCreatedButNotRecordedIsAdopted(t *testing.T) {
	t.Parallel()
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{apptest.GitHubToken}, RateLimit: 1_000_000})
	github.AddPullRequest("acme/app", 7, nil)
	github.AddWorkflowJobs("acme/app", 9001, []fake.WorkflowJob{
		{Name: "test", Conclusion: "failure", Steps: []fake.WorkflowStep{{Name: "go test ./...", Conclusion: "failure"}}},
	})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: apptest.ModelKey, BatchDelay: -1,
		RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	model.HangUpAfterBatchCreates(1)
	h := startWith(t, github, model, func(c *config.Config) {
		c.Defaults.BatchEvents = []string{"workflow_run.completed"}
		c.Defaults.Context = repoContext
		c.Anthropic.BatchInterval = config.Duration(100 * time.Millisecond)
	})
	client := &http.Client{Timeout: 30 * time.Second}
	if code, err := fake.Send(client, h.endpoint, secret, fake.Delivery{Event: "workflow_run", GUID: "run-9001", HookID: "42",
		Payload: fake.WorkflowRunEvent("acme/app", 9001, "CI", "failure", "3f786850e387550fdab836ed7e6dc881de23001b", 7)}); err != nil || code != http.StatusAccepted {
		t.Fatalf("send = %d, %v", code, err)
	}
	run := waitFor(t, h, "run-9001", 30*time.Second, func(d store.Delivery) bool {
		return d.Status == store.StatusBatched && len(model.Batches()) == 1
	})
	it, err := h.app.Store.BatchItemOf(t.Context(), run.ID)
	if err != nil || it.State != store.BatchSubmitting {
		t.Fatalf("item after the lost answer = %+v, %v; want submitting", it, err)
	}
	// Rounds go on while the batch runs; none submits the request again.
	time.Sleep(500 * time.Millisecond)
	if n := len(model.Batches()); n != 1 {
		t.Fatalf("batches while the unrecorded one runs = %d, want 1", n)
	}

	model.EndBatches()
	waitFor(t, h, "run-9001", 30*time.Second, func(d store.Delivery) bool { return d.Status == store.StatusDone })
	if bs := model.Batches(); len(bs) != 1 || bs[0].Requests != 1 {
		t.Errorf("batches = %+v, want the one, of one request", bs)
	}
	if it, _ := h.app.Store.BatchItemOf(t.Context(), run.ID); it.State != store.BatchDone || it.BatchID != model.Batches()[0].ID {
		t.Errorf("item = %s in %q, want done in the adopted batch", it.State, it.BatchID)
	}
	if cs := github.Comments("acme/app", 7); len(cs) != 1 {
		t.Errorf("comments on #7 = %d, want 1", len(cs))
	}
	rows, err := h.app.Store.UsageOf(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	billed := model.BatchUsage()
	if len(rows) != 1 || rows[0].Outcome != "ok" || billed[rows[0].Model].Calls != 1 || rows[0].Input != billed[rows[0].Model].InputTokens {
		t.Errorf("ledger = %+v, the API billed %+v; want one settled call, as billed", rows, billed)
	}
	if n := model.Calls(); n != 1 {
		t.Errorf("model calls = %d, want 1", n)
	}
}
