package pipeline_test

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
)

// drain runs the pipeline on ids the way the queue would: again after the
// wait a busy delivery asks for, until every one of them is finished.
func (h *harness) drain(t *testing.T, ids ...int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	pending := ids
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %v still busy after 20s", pending)
		}
		var again []int64
		wait := time.Duration(0)
		for _, id := range pending {
			err := h.p.Process(t.Context(), id, fmt.Sprintf("job-%d", id))
			if d := queue.RetryAfter(err); d > 0 {
				again = append(again, id)
				wait = max(wait, min(d, 200*time.Millisecond))
				continue
			}
			if err != nil {
				t.Fatalf("Process(%d) = %v, want nil or a retry", id, err)
			}
		}
		pending = again
		time.Sleep(wait)
	}
}

func withQuiet(cfg config.Config, d time.Duration) config.Config {
	q := config.Duration(d)
	cfg.Defaults.QuietPeriod = &q
	return cfg
}

func TestEditBurstIsAnalysedOnceInItsLatestState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withQuiet(config.Default(), 300*time.Millisecond), nil)
	body := "Saving a file with a long name fails with ENAMETOOLONG on Linux."
	ids := []int64{
		h.deliver(t, "issues", fake.IssueEvent("opened", repo, 5, "Save fails", body+" token-v1", "alice")),
		h.deliver(t, "issues", fake.IssueEvent("edited", repo, 5, "Save fails", body+" Version 2.1. token-v2", "alice")),
		h.deliver(t, "issues", fake.IssueEvent("edited", repo, 5, "Save fails on long names", body+" Version 2.1, Ubuntu 24.04. token-v3", "alice")),
	}
	// The first delivery must not be analysed while newer ones are
	// unplanned, however late the queue runs it.
	if err := h.p.Process(t.Context(), ids[0], "job-early"); queue.RetryAfter(err) <= 0 {
		t.Fatalf("Process(first of a burst) = %v, want a retry later", err)
	}
	h.drain(t, ids...)

	if got := h.model.Calls(); got != 1 {
		t.Fatalf("model calls = %d, want 1 for the burst", got)
	}
	p := h.model.Requests()[0].Prompt
	if !strings.Contains(p, "token-v3") || strings.Contains(p, "token-v1") || strings.Contains(p, "token-v2") {
		t.Errorf("prompt = %q, want the latest body (token-v3) only", p)
	}
	h.onlyComment(t, 5)
	for _, id := range ids[:2] {
		if d := h.wantStatus(t, id, store.StatusSkipped); !strings.HasPrefix(d.Reason, "coalesced: ") {
			t.Errorf("reason of delivery %d = %q, want coalesced", id, d.Reason)
		}
	}
	h.wantStatus(t, ids[2], store.StatusDone)
}

func TestAnalysedIssueIsAnalysedAgainOnlyForChangesThatMatter(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	two := 2
	cfg.Defaults.MaxAnalysesPerThread = &two
	h := newHarness(t, cfg, nil)
	body := "Export to CSV drops the last row when the table has exactly 100 rows."
	h.process(t, "issues", fake.IssueEvent("opened", repo, 3, "CSV export drops a row", body, "alice"))

	typo := h.process(t, "issues", fake.IssueEvent("edited", repo, 3, "CSV export drops a row", "  "+strings.Replace(body, "exactly", "exacty", 1), "alice"))
	if d := h.wantStatus(t, typo, store.StatusSkipped); !strings.HasPrefix(d.Reason, "no_change: ") {
		t.Errorf("reason after a typo edit = %q, want no_change", d.Reason)
	}
	more := body + " It also happens with 200 rows, and the JSON export is fine. Started in 3.2."
	h.process(t, "issues", fake.IssueEvent("edited", repo, 3, "CSV export drops a row", more, "alice"))
	if got := h.model.Calls(); got != 2 {
		t.Errorf("model calls = %d, want 2 (the substantive edit is analysed again)", got)
	}
	h.onlyComment(t, 3) // updated, not posted twice

	third := h.process(t, "issues", fake.IssueEvent("edited", repo, 3, "CSV export drops rows", more+" Workaround: add an empty row at the end of every table.", "alice"))
	if d := h.wantStatus(t, third, store.StatusSkipped); !strings.HasPrefix(d.Reason, "thread_limit: ") {
		t.Errorf("reason past max_analyses_per_thread = %q, want thread_limit", d.Reason)
	}
}

func TestPushBurstIsReviewedOnceAtTheLastHead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, withQuiet(config.Default(), 300*time.Millisecond), reviewAnswer())
	h.github.AddPullRequest(repo, 12, []fake.PRFile{{Filename: "main.go", Status: "modified", Additions: 1, Patch: "@@ -1 +1 @@\n-a\n+b\n"}})
	heads := []string{strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)}
	ids := []int64{h.deliver(t, "pull_request", fake.PullRequestEvent("opened", repo, 12, "Fix", "Fixes it.", heads[0], "alice", "", false))}
	for _, sha := range heads[1:] {
		ids = append(ids, h.deliver(t, "pull_request", fake.PullRequestEvent("synchronize", repo, 12, "Fix", "Fixes it.", sha, "alice", "", false)))
	}
	h.drain(t, ids...)
	if got := h.model.Calls(); got != 1 {
		t.Fatalf("model calls = %d, want 1 for the burst", got)
	}
	c := h.onlyComment(t, 12)
	if !strings.Contains(c.Body, heads[2]) || strings.Contains(c.Body, heads[0]) {
		t.Errorf("review = %q, want it to name the last head %s only", c.Body, heads[2])
	}

	// The same head again (ready_for_review, say) costs nothing.
	again := h.deliver(t, "pull_request", fake.PullRequestEvent("ready_for_review", repo, 12, "Fix", "Fixes it.", heads[2], "alice", "", false))
	h.drain(t, again)
	if d := h.wantStatus(t, again, store.StatusSkipped); !strings.HasPrefix(d.Reason, "no_change: ") {
		t.Errorf("reason for the reviewed head = %q, want no_change", d.Reason)
	}
}

func budgetConfig(t *testing.T, daily float64, onLimit string) (config.Config, *fake.AlertWebhook) {
	sink := &fake.AlertWebhook{}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	cfg := config.Default()
	cfg.Budget.Daily = daily
	cfg.Budget.OnLimit = onLimit
	cfg.Budget.AlertWebhook = config.Secret(srv.URL)
	// One author opens every issue: the budget, not the author's cap,
	// must be what holds them.
	cfg.Defaults.MaxAnalysesPerAuthor = ptr(0)
	return cfg, sink
}

func issueBody(i int) string {
	return fmt.Sprintf("Issue %d: the scheduler skips a run when two jobs share a cron expression. %s", i, strings.Repeat("Details follow. ", 40))
}

func TestBudgetDefersCallsAndAlertsOnce(t *testing.T) {
	t.Parallel()
	cfg, sink := budgetConfig(t, 0.05, config.OnLimitDefer)
	h := newHarness(t, cfg, nil)
	var deferred []store.Delivery
	for i := 1; i <= 40; i++ {
		id := h.process(t, "issues", fake.IssueEvent("opened", repo, i, fmt.Sprintf("Scheduler bug %d", i), issueBody(i), "alice"))
		if d := h.delivery(t, id); d.Status == store.StatusDeferred {
			deferred = append(deferred, d)
		}
	}
	if len(deferred) == 0 {
		t.Fatal("no delivery deferred: the stream did not reach the budget")
	}
	if r := deferred[0].Reason; !strings.Contains(r, "deferred until ") || !strings.Contains(r, "day ") {
		t.Errorf("deferred reason = %q, want the budget and when it resumes", r)
	}
	var spent int64
	for _, d := range h.all(t) {
		for _, u := range h.usage(t, d.ID) {
			spent += u.CostMicros
		}
	}
	if spent > 50_000 {
		t.Errorf("spent $%.4f, want at most the $0.05 budget", float64(spent)/1e6)
	}
	texts := sink.Texts()
	want := []string{"50% of the daily budget", "80% of the daily budget", "daily budget reached"}
	if len(texts) != len(want) {
		t.Fatalf("alerts = %q, want one each of %q", texts, want)
	}
	for i, w := range want {
		if !strings.Contains(texts[i], w) {
			t.Errorf("alert %d = %q, want it to say %q", i, texts[i], w)
		}
	}
}

func TestBudgetSkipLeavesANoteAndFallbackUsesTheCheaperModel(t *testing.T) {
	t.Parallel()
	t.Run("skip", func(t *testing.T) {
		t.Parallel()
		cfg, _ := budgetConfig(t, 0.000001, config.OnLimitSkip)
		h := newHarness(t, cfg, nil)
		id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Scheduler bug", issueBody(1), "alice"))
		if d := h.wantStatus(t, id, store.StatusSkipped); !strings.HasPrefix(d.Reason, "budget: ") {
			t.Errorf("reason = %q, want budget", d.Reason)
		}
		if c := h.onlyComment(t, 1); !strings.Contains(c.Body, "daily budget for global is used up") {
			t.Errorf("note = %q, want it to say the daily budget is used up", c.Body)
		}
		if got := h.model.Calls(); got != 0 {
			t.Errorf("model calls = %d, want 0", got)
		}
	})
	t.Run("analysis replaces the note", func(t *testing.T) {
		t.Parallel()
		// The job that left the note runs again (a crash before its status
		// was written) when the budget has room: the analysis must take the
		// note's place, not join it.
		cfg, _ := budgetConfig(t, 0.000001, config.OnLimitSkip)
		h := newHarness(t, cfg, nil)
		id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Scheduler bug", issueBody(1), "alice"))
		if c := h.onlyComment(t, 1); !strings.Contains(c.Body, "is used up") {
			t.Fatalf("comment = %q, want the budget note", c.Body)
		}
		if err := h.st.SetDeliveryStatus(t.Context(), id, store.StatusQueued, "crashed"); err != nil {
			t.Fatal(err)
		}
		cfg.Budget.Daily = 10
		if err := h.rebuild(withQuiet(cfg, 0)).Process(t.Context(), id, "job-2"); err != nil {
			t.Fatalf("Process again = %v", err)
		}
		if c := h.onlyComment(t, 1); !strings.Contains(c.Body, "hookwise triage") {
			t.Errorf("comment = %q, want the analysis in the note's place", c.Body)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		t.Parallel()
		// Enough for one Haiku call, not for one Sonnet call.
		cfg, _ := budgetConfig(t, 0.012, config.OnLimitFallback)
		h := newHarness(t, cfg, nil)
		id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Scheduler bug", issueBody(1), "alice"))
		h.wantStatus(t, id, store.StatusDone)
		reqs := h.model.Requests()
		if len(reqs) != 1 || reqs[0].Model != cfg.Budget.FallbackModel {
			t.Fatalf("model requests = %d, first model %q, want one call to %s", len(reqs), reqs[0].Model, cfg.Budget.FallbackModel)
		}
	})
}

func (h *harness) all(t *testing.T) []store.Delivery {
	t.Helper()
	ds, err := h.st.ListDeliveries(t.Context(), store.DeliveryFilter{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func (h *harness) usage(t *testing.T, id int64) []store.UsageRow {
	t.Helper()
	rows, err := h.st.UsageOf(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// An answer stored before a newer one was posted — its comment failed and
// waited for a retry — must not overwrite the newer analysis.
func TestOlderStoredAnswerDoesNotOverwriteNewer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), nil)
	body := "Export to CSV drops the last row when the table has exactly 100 rows."
	older := h.deliver(t, "issues", fake.IssueEvent("opened", repo, 4, "CSV export drops a row", body, "alice"))
	h.github.FailNext("POST", "/repos/"+repo+"/issues/4/comments", 502, 1)
	if err := h.p.Process(t.Context(), older, "job-1"); err == nil {
		t.Fatal("Process with GitHub failing = nil, want an error to retry")
	}
	newer := h.process(t, "issues", fake.IssueEvent("edited", repo, 4, "CSV export drops a row",
		body+" It also happens with 200 rows, and the JSON export is fine. Started in 3.2.", "alice"))
	h.wantStatus(t, newer, store.StatusDone)
	if err := h.p.Process(t.Context(), older, "job-1"); err != nil {
		t.Fatalf("retry of the older delivery = %v", err)
	}
	if d := h.wantStatus(t, older, store.StatusSkipped); !strings.HasPrefix(d.Reason, "coalesced: ") {
		t.Errorf("older delivery's reason = %q, want coalesced", d.Reason)
	}
	if got := h.model.Calls(); got != 2 {
		t.Errorf("model calls = %d, want 2", got)
	}
	h.onlyComment(t, 4)
}

// A call the API ran but whose answer was lost (the connection dropped)
// may have been billed: the ledger charges its estimate, at least what the
// API billed, so that lost answers never let spending pass a budget
// unseen. The retry is charged what it cost.
func TestLostAnswerIsChargedItsEstimate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), issueAnswer([]string{"bug"}, false, ""))
	h.model.HangUpNext(1)
	id := h.deliver(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics when the config file is empty.", "alice"))
	if err := h.p.Process(t.Context(), id, "job-1"); err == nil {
		t.Fatal("Process with the answer lost = nil, want an error to retry")
	}
	var billed int64
	for _, u := range h.model.Usage() {
		billed += u.Calls
	}
	rows := h.usage(t, id)
	if len(rows) != 1 || rows[0].Outcome != claude.TypeNetwork || rows[0].CostMicros <= 0 || rows[0].CostMicros != rows[0].EstimateMicros {
		t.Fatalf("ledger after a lost answer = %+v, want one network_error row charged its (positive) estimate", rows)
	}
	if billed != 1 {
		t.Fatalf("the API billed %d calls, want 1: the fake ran the call it hung up on", billed)
	}

	if err := h.p.Process(t.Context(), id, "job-1"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	h.onlyComment(t, 1)
	rows = h.usage(t, id)
	// The retry is the same call: what it cost is what the lost one was
	// billed, and the estimate charged for that is no less.
	if len(rows) != 2 || rows[1].Outcome != "ok" || rows[1].CostMicros <= 0 || rows[1].CostMicros > rows[0].CostMicros {
		t.Errorf("ledger after the retry = %+v, want the lost call at its estimate, then the answered one at its cost, no more", rows)
	}
}

// A redelivery of an old event — the sweep's, after an outage — arrives
// after a newer state of its thread was analysed. It has the newest id but
// the thread as it was: it is coalesced, and the posted analysis stays
// that of the newest state.
func TestRedeliveredOldEventDoesNotOverwriteNewerState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), nil)
	t0 := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	issue := func(at time.Time, body string) []byte {
		return fake.IssueSnapshotEvent("edited", repo, fake.IssueSnapshot{Number: 5, Title: "Exports drop rows", Body: body,
			Author: "alice", UpdatedAt: at}, "alice")
	}
	const (
		first  = "CSV export drops the last row when the table has exactly 100 rows."
		middle = "CSV export drops the last row when the table has exactly 100 rows. Also at 200, on 3.2 and 3.3."
		newest = "Every export (CSV, JSON, XLSX) drops the last row of each 100-row page since 3.2; the streaming writer misses the final flush."
	)
	opened := fake.IssueSnapshotEvent("opened", repo, fake.IssueSnapshot{Number: 5, Title: "Exports drop rows", Body: first,
		Author: "alice", UpdatedAt: t0}, "alice")
	h.wantStatus(t, h.process(t, "issues", opened), store.StatusDone)
	h.wantStatus(t, h.process(t, "issues", issue(t0.Add(2*time.Minute), newest)), store.StatusDone)

	late := h.process(t, "issues", issue(t0.Add(time.Minute), middle))
	if d := h.wantStatus(t, late, store.StatusSkipped); !strings.HasPrefix(d.Reason, "coalesced: ") {
		t.Errorf("the redelivered older edit's reason = %q, want coalesced", d.Reason)
	}
	reqs := h.model.Requests()
	if len(reqs) != 2 || !strings.Contains(reqs[1].Prompt, newest) {
		t.Fatalf("model calls = %d, want 2, the last of the newest text", len(reqs))
	}
	h.onlyComment(t, 5)
}
