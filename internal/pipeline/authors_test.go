package pipeline_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// with returns payload with the JSON values at the given dotted paths
// replaced, for what the fakes' payloads do not vary (an author's
// association, a run's fork).
func with(t *testing.T, payload []byte, set map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	for path, v := range set {
		keys := strings.Split(path, ".")
		obj := m
		for _, k := range keys[:len(keys)-1] {
			next, ok := obj[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				obj[k] = next
			}
			obj = next
		}
		obj[keys[len(keys)-1]] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// processIn stores a delivery of event to repository r (the harness's
// deliver always names its own) and runs the pipeline on it once.
func (h *harness) processIn(t *testing.T, r, event string, payload []byte) store.Delivery {
	t.Helper()
	h.guids++
	var head struct{ Action string }
	_ = json.Unmarshal(payload, &head)
	d := store.Delivery{HookID: "1", GUID: fmt.Sprintf("guid-%d", h.guids), Event: event, Action: head.Action,
		Repo: r, Payload: payload, ReceivedAt: time.Now()}
	var ids []int64
	err := h.st.Tx(t.Context(), func(tx *sql.Tx) error {
		var err error
		ids, err = h.st.InsertDeliveries(t.Context(), tx, []store.Delivery{d})
		return err
	})
	if err != nil || len(ids) != 1 {
		t.Fatalf("InsertDeliveries = %v, %v", ids, err)
	}
	if err := h.p.Process(t.Context(), ids[0], "job-1"); err != nil {
		t.Fatalf("Process(%d) = %v, want nil", ids[0], err)
	}
	return h.delivery(t, ids[0])
}

func issueBy(t *testing.T, r string, number int, author, association string) []byte {
	return with(t, fake.IssueEvent("opened", r, number, fmt.Sprintf("Crash number %d", number),
		"The scheduler panics on start-up when the config file is empty.", author),
		map[string]any{"issue.author_association": association})
}

// TestAuthorLimit: a stranger's threads are analysed up to
// max_analyses_per_author a day, counted across repositories; then each
// delivery is skipped with author_limit and no model call. Members are
// exempt unless the configuration says otherwise; review requests and runs
// from the repository's own branches count against nobody.
func TestAuthorLimit(t *testing.T) {
	t.Parallel()
	type step struct {
		repo, event string
		payload     func(t *testing.T) []byte
		want        string // status
	}
	stranger := func(r string, n int) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return issueBy(t, r, n, "Mallory", "NONE") }
	}
	member := func(n int) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return issueBy(t, repo, n, "carol", "MEMBER") }
	}
	pr := func(n int, action, author, reviewer string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			return with(t, fake.PullRequestEvent(action, repo, n, "Fix", "Fixes the crash.", headSHA, author, reviewer, false),
				map[string]any{"pull_request.author_association": "CONTRIBUTOR"})
		}
	}
	run := func(id int64, fork string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			return with(t, fake.WorkflowRunEvent(repo, id, "CI", "failure", headSHA),
				map[string]any{"workflow_run.head_repository.full_name": fork, "workflow_run.actor.login": "mallory"})
		}
	}
	tests := []struct {
		name   string
		mutate func(*config.Config)
		steps  []step
	}{
		{"a stranger across repositories", nil, []step{
			{repo, "issues", stranger(repo, 1), store.StatusDone},
			{"acme/lib", "issues", stranger("acme/lib", 1), store.StatusDone},
			{"other/tool", "issues", stranger("other/tool", 1), store.StatusDone},
			{"acme/lib", "issues", stranger("acme/lib", 2), store.StatusSkipped},
			{repo, "issues", member(3), store.StatusDone}, // someone else is not held
			{repo, "pull_request", pr(4, "opened", "mallory", ""), store.StatusSkipped},
		}},
		{"members are exempt", nil, []step{
			{repo, "issues", member(1), store.StatusDone},
			{repo, "issues", member(2), store.StatusDone},
			{repo, "issues", member(3), store.StatusDone},
			{repo, "issues", member(4), store.StatusDone},
		}},
		{"members are capped when not exempt", func(c *config.Config) { c.Defaults.AuthorLimitExempt = []string{} }, []step{
			{repo, "issues", member(1), store.StatusDone},
			{repo, "issues", member(2), store.StatusDone},
			{repo, "issues", member(3), store.StatusDone},
			{repo, "issues", member(4), store.StatusSkipped},
		}},
		{"no cap", func(c *config.Config) { c.Defaults.MaxAnalysesPerAuthor = ptr(0) }, []step{
			{repo, "issues", stranger(repo, 1), store.StatusDone},
			{repo, "issues", stranger(repo, 2), store.StatusDone},
			{repo, "issues", stranger(repo, 3), store.StatusDone},
			{repo, "issues", stranger(repo, 4), store.StatusDone},
		}},
		{"review requests and own branches count against nobody", nil, []step{
			{repo, "workflow_run", run(101, repo), store.StatusDone},
			{repo, "pull_request", pr(5, "review_requested", "mallory", "carol"), store.StatusDone},
			{repo, "workflow_run", run(102, "mallory/app"), store.StatusDone}, // a fork: mallory's
			{repo, "issues", stranger(repo, 1), store.StatusDone},
			{repo, "pull_request", pr(6, "review_requested", "mallory", "dave"), store.StatusDone},
			{repo, "issues", stranger(repo, 2), store.StatusDone},
			{repo, "workflow_run", run(103, "mallory/app"), store.StatusSkipped},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Defaults.MaxAnalysesPerAuthor = ptr(3)
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			h := newHarness(t, cfg, nil)
			calls := 0
			for i, st := range tt.steps {
				d := h.processIn(t, st.repo, st.event, st.payload(t))
				if d.Status != st.want {
					t.Fatalf("step %d (%s in %s): status %q (%s), want %q", i, st.event, st.repo, d.Status, d.Reason, st.want)
				}
				if st.want == store.StatusDone {
					calls++
				} else if !strings.HasPrefix(d.Reason, "author_limit: mallory's threads had 3 analyses in the last 24 hours") &&
					!strings.HasPrefix(d.Reason, "author_limit: carol's threads had 3") {
					t.Errorf("step %d: reason %q, want author_limit naming the author and the count", i, d.Reason)
				}
			}
			if got := h.model.Calls(); got != calls {
				t.Errorf("model calls = %d, want %d: none for a delivery held by the cap", got, calls)
			}
		})
	}
}
