package pipeline_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/app"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/pipeline"
	"github.com/hookwise/hookwise/internal/prompt"
	"github.com/hookwise/hookwise/internal/store"
)

const (
	repo     = "acme/app"
	ghToken  = "gh-test-token"
	modelKey = "model-test-key"
	headSHA  = "3f786850e387550fdab836ed7e6dc881de23001b"
)

// harness is a Pipeline wired by hand to a temp SQLite store and to the real
// GitHub and Claude adapters talking to wire-format fakes.
type harness struct {
	st     *store.Store
	github *fake.GitHub
	model  *fake.Anthropic
	p      *pipeline.Pipeline
	guids  int
	// rebuild makes a Pipeline with another configuration over the same
	// store and fakes.
	rebuild func(cfg config.Config) *pipeline.Pipeline
}

// newHarness builds a Pipeline with cfg. The model answers every call with
// answer (JSON-encoded), or fills the request's schema when answer is nil.
func newHarness(t testing.TB, cfg config.Config, answer any) *harness {
	t.Helper()
	opts := fake.AnthropicOptions{}
	if answer != nil {
		opts.Respond = func(fake.AnthropicRequest) (any, error) { return answer, nil }
	}
	return newHarnessWith(t, cfg, opts, nil)
}

// newHarnessWith builds a Pipeline with cfg against a model fake with opts
// (its key is set here), reached through modelClient (nil: the default).
func newHarnessWith(t testing.TB, cfg config.Config, opts fake.AnthropicOptions, modelClient *http.Client) *harness {
	t.Helper()
	ctx := t.Context()

	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}

	h := &harness{st: st, github: fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghToken}})}
	opts.APIKey = modelKey
	h.model = fake.NewAnthropic(opts)

	ghSrv := httptest.NewServer(h.github)
	t.Cleanup(ghSrv.Close)
	modelSrv := httptest.NewServer(h.model)
	t.Cleanup(modelSrv.Close)

	ghc, err := gh.New(gh.Options{BaseURL: ghSrv.URL + "/", Token: ghToken})
	if err != nil {
		t.Fatalf("gh.New: %v", err)
	}
	mc := claude.New(claude.Options{APIKey: modelKey, BaseURL: modelSrv.URL, HTTPClient: modelClient})
	prompts, err := prompt.New("", nil)
	if err != nil {
		t.Fatalf("prompt.New: %v", err)
	}
	if q := cfg.Defaults.QuietPeriod; q != nil && *q == *config.Default().Defaults.QuietPeriod {
		// Most tests send one event per thread: no quiet period to wait
		// out. Coalescing tests set their own.
		cfg.Defaults.QuietPeriod = new(config.Duration)
	}
	h.rebuild = func(cfg config.Config) *pipeline.Pipeline {
		return pipeline.New(st, ghc, mc, prompts, app.PipelineOptions(cfg), pipeline.NewMetrics(nil), nil)
	}
	h.p = h.rebuild(cfg)
	return h
}

// deliver stores one delivery of event with payload, as the webhook
// endpoint would, and returns its id.
func (h *harness) deliver(t *testing.T, event string, payload []byte) int64 {
	t.Helper()
	var head struct {
		Action string `json:"action"`
		Sender struct {
			Login string `json:"login"`
		} `json:"sender"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		t.Fatalf("payload: %v", err)
	}
	return h.insert(t, store.Delivery{Event: event, Action: head.Action, Sender: head.Sender.Login, Payload: payload})
}

// deliverRaw stores a delivery of event whose payload need not be JSON.
func (h *harness) deliverRaw(t *testing.T, event string, payload []byte) int64 {
	t.Helper()
	return h.insert(t, store.Delivery{Event: event, Payload: payload})
}

func (h *harness) insert(t *testing.T, d store.Delivery) int64 {
	t.Helper()
	h.guids++
	d.HookID, d.GUID, d.ReceivedAt = "1", fmt.Sprintf("guid-%d", h.guids), time.Now()
	if d.Repo == "" {
		d.Repo = repo
	}
	var ids []int64
	err := h.st.Tx(t.Context(), func(tx *sql.Tx) error {
		var err error
		ids, err = h.st.InsertDeliveries(t.Context(), tx, []store.Delivery{d})
		return err
	})
	if err != nil {
		t.Fatalf("InsertDeliveries: %v", err)
	}
	if len(ids) != 1 || ids[0] == 0 {
		t.Fatalf("InsertDeliveries = %v, want one new id", ids)
	}
	return ids[0]
}

// process stores a delivery and runs the pipeline on it once, failing the
// test on error.
func (h *harness) process(t *testing.T, event string, payload []byte) int64 {
	t.Helper()
	id := h.deliver(t, event, payload)
	if err := h.p.Process(t.Context(), id, "job-1"); err != nil {
		t.Fatalf("Process(%d) = %v, want nil", id, err)
	}
	return id
}

func (h *harness) delivery(t *testing.T, id int64) store.Delivery {
	t.Helper()
	d, err := h.st.Delivery(t.Context(), id)
	if err != nil {
		t.Fatalf("Delivery(%d): %v", id, err)
	}
	return d
}

func (h *harness) wantStatus(t *testing.T, id int64, want string) store.Delivery {
	t.Helper()
	d := h.delivery(t, id)
	if d.Status != want {
		t.Errorf("status of delivery %d = %q (reason %q), want %q", id, d.Status, d.Reason, want)
	}
	return d
}

// onlyComment returns the single comment on thread number, failing unless
// there is exactly one.
func (h *harness) onlyComment(t *testing.T, number int) fake.Comment {
	t.Helper()
	cs := h.github.Comments(repo, number)
	if len(cs) != 1 {
		t.Fatalf("comments on #%d = %d (%q), want 1", number, len(cs), bodies(cs))
	}
	return cs[0]
}

func bodies(cs []fake.Comment) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Body)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func issueAnswer(labels []string, invalid bool, closeReason string) map[string]any {
	return map[string]any{
		"classification": "bug",
		"summary":        "The service panics on start-up when the config file is empty.",
		"impact":         "Nobody can start the service with an empty config.",
		"priority":       "high",
		"complexity":     "small",
		"plan":           []string{"Treat an empty file as the defaults.", "Add a test."},
		"questions":      []string{"Which version are you running?"},
		"labels":         labels,
		"invalid":        invalid,
		"close_reason":   closeReason,
	}
}

func reviewAnswer() map[string]any {
	return map[string]any{
		"summary": "Adds retries to the client.",
		"risk":    "low",
		"findings": []map[string]any{
			{"file": "client.go", "line": 12, "severity": "minor", "message": "The loop never gives up."},
		},
		"labels":       []string{},
		"not_reviewed": []string{},
	}
}

func workflowAnswer() map[string]any {
	return map[string]any{
		"summary":       "The unit tests failed.",
		"likely_cause":  "A test depends on the wall clock.",
		"suggested_fix": "Inject the clock.",
		"flaky":         false,
	}
}

const markerPrefix = "<!-- hookwise:"

var markerRE = regexp.MustCompile(`<!-- hookwise:(.*?) -->`)

func TestIssueOpenedCommentsAndLabelsFromAllowlist(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), issueAnswer([]string{"bug", "made-up-label"}, false, ""))
	h.github.SetRepoLabels(repo, []string{"bug", "question"})

	id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))

	c := h.onlyComment(t, 1)
	if !strings.Contains(c.Body, markerPrefix) {
		t.Errorf("comment body = %q, want it to carry %q", c.Body, markerPrefix)
	}
	if !pipeline.HasMarker(c.Body) {
		t.Errorf("HasMarker(comment) = false, want true")
	}
	if c.User != "hookwise-bot" {
		t.Errorf("comment author = %q, want %q", c.User, "hookwise-bot")
	}
	if got, want := h.github.Labels(repo, 1), []string{"bug"}; !slices.Equal(got, want) {
		t.Errorf("labels on #1 = %q, want %q", got, want)
	}
	h.wantStatus(t, id, store.StatusDone)
	if got := h.model.Calls(); got != 1 {
		t.Errorf("model calls = %d, want 1", got)
	}
}

func TestIssueLabelAllowlistOverridesRepoLabels(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Defaults.LabelAllowlist = []string{"question"}
	h := newHarness(t, cfg, issueAnswer([]string{"bug", " QUESTION "}, false, ""))
	h.github.SetRepoLabels(repo, []string{"bug", "question"})

	h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "How?", "How do I start it?", "alice"))

	// The allowlist wins over the repository's labels; the model's spelling
	// is matched loosely.
	if got, want := h.github.Labels(repo, 1), []string{"question"}; !slices.Equal(got, want) {
		t.Errorf("labels on #1 = %q, want %q", got, want)
	}
}

func TestCrashBetweenPostAndLedgerPostsOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newHarness(t, config.Default(), issueAnswer([]string{"bug"}, false, ""))
	h.github.SetRepoLabels(repo, []string{"bug"})

	id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))
	first := h.onlyComment(t, 1)

	// The comment is on GitHub but the worker died before recording it and
	// before finishing the delivery.
	if _, err := h.st.DB.ExecContext(ctx, `DELETE FROM hw_writes`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.DB.ExecContext(ctx, `UPDATE hw_deliveries SET status = 'queued', reason = '' WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}

	if err := h.p.Process(ctx, id, "job-1"); err != nil {
		t.Fatalf("Process(%d) after crash = %v, want nil", id, err)
	}
	again := h.onlyComment(t, 1)
	if again.ID != first.ID || again.Body != first.Body {
		t.Errorf("comment after retry = {%d %q}, want unchanged {%d %q}", again.ID, again.Body, first.ID, first.Body)
	}
	if got := h.model.Calls(); got != 1 {
		t.Errorf("model calls = %d, want 1 (stored answer reused)", got)
	}
	h.wantStatus(t, id, store.StatusDone)

	// The ledger knows the comment again, under the key in its marker.
	m := markerRE.FindStringSubmatch(again.Body)
	if m == nil {
		t.Fatalf("comment body = %q, want a hookwise marker", again.Body)
	}
	w, err := h.st.WriteFor(ctx, m[1])
	if err != nil {
		t.Fatalf("WriteFor(%q) = %v, want the re-recorded row", m[1], err)
	}
	if w.CommentID != again.ID || w.DeliveryID != id {
		t.Errorf("WriteFor(%q) = comment %d delivery %d, want comment %d delivery %d", m[1], w.CommentID, w.DeliveryID, again.ID, id)
	}
}

func TestProcessDoneDeliveryIsNoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), issueAnswer(nil, false, ""))
	id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))
	_, writes := h.github.Stats()

	if err := h.p.Process(t.Context(), id, "job-1"); err != nil {
		t.Fatalf("second Process(%d) = %v, want nil", id, err)
	}
	if _, got := h.github.Stats(); got != writes {
		t.Errorf("GitHub writes after second Process = %d, want %d", got, writes)
	}
	if got := h.model.Calls(); got != 1 {
		t.Errorf("model calls = %d, want 1", got)
	}
}

func TestAutoCloseInvalid(t *testing.T) {
	t.Parallel()
	const reason = "This looks like spam rather than a report about the project."
	tests := []struct {
		name       string
		rules      []config.RepoRule
		wantState  string
		wantReason bool
	}{
		{name: "default config keeps it open", wantState: "open"},
		{
			name:       "repository rule closes it",
			rules:      []config.RepoRule{{Match: "acme/*", RepoSettings: config.RepoSettings{AutoCloseInvalid: ptr(true)}}},
			wantState:  "closed",
			wantReason: true,
		},
		{
			name:      "rule for another owner does not apply",
			rules:     []config.RepoRule{{Match: "other/*", RepoSettings: config.RepoSettings{AutoCloseInvalid: ptr(true)}}},
			wantState: "open",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Repositories = tt.rules
			h := newHarness(t, cfg, issueAnswer(nil, true, reason))

			id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Buy now", "cheap watches", "spammer"))

			if got := h.github.State(repo, 1); got != tt.wantState {
				t.Errorf("State(#1) = %q, want %q", got, tt.wantState)
			}
			c := h.onlyComment(t, 1)
			if got := strings.Contains(c.Body, reason); got != tt.wantReason {
				t.Errorf("comment contains close reason = %v, want %v; body:\n%s", got, tt.wantReason, c.Body)
			}
			h.wantStatus(t, id, store.StatusDone)
		})
	}
}

func TestPullRequestReviewNamesHeadCommit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), reviewAnswer())
	h.github.AddPullRequest(repo, 7, []fake.PRFile{
		{Filename: "client.go", Status: "modified", Additions: 10, Deletions: 2, Patch: "@@ -1,2 +1,10 @@\n+for {\n+}\n"},
	})

	id := h.process(t, "pull_request", fake.PullRequestEvent("opened", repo, 7, "Add retries", "", headSHA, "alice", "", false))

	c := h.onlyComment(t, 7)
	if !strings.Contains(c.Body, headSHA) {
		t.Errorf("review body = %q, want it to name head %s", c.Body, headSHA)
	}
	if !strings.Contains(c.Body, "client.go:12") {
		t.Errorf("review body = %q, want the finding at client.go:12", c.Body)
	}
	if strings.Contains(c.Body, "Not reviewed") {
		t.Errorf("review body = %q, want no not-reviewed list for a small diff", c.Body)
	}
	h.wantStatus(t, id, store.StatusDone)
}

// bigPullRequest adds pull request 8 whose four 25,000-character patches
// exceed the prompt's 60,000-character budget, and returns the names of the
// files that cannot fit.
func bigPullRequest(h *harness) (omitted []string) {
	var files []fake.PRFile
	for _, name := range []string{"a.go", "b.go", "c.go", "d.go"} {
		files = append(files, fake.PRFile{Filename: name, Status: "modified", Additions: 500,
			Patch: "@@ -0,0 +1,500 @@\n" + strings.Repeat("+x\n", (25_000-18)/3)})
	}
	h.github.AddPullRequest(repo, 8, files)
	return []string{"c.go", "d.go"}
}

func TestPullRequestOverBudgetNamesFilesNotReviewed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), reviewAnswer())
	omitted := bigPullRequest(h)

	h.process(t, "pull_request", fake.PullRequestEvent("opened", repo, 8, "Big change", "", headSHA, "alice", "", false))

	c := h.onlyComment(t, 8)
	for _, f := range []string{"a.go", "b.go", "c.go", "d.go"} {
		want := slices.Contains(omitted, f)
		if got := strings.Contains(c.Body, "- "+f+"\n"); got != want {
			t.Errorf("review lists %s as not reviewed = %v, want %v; body:\n%s", f, got, want, c.Body)
		}
	}
	reqs := h.model.Requests()
	if len(reqs) != 1 {
		t.Fatalf("model requests = %d, want 1", len(reqs))
	}
	if n := len(reqs[0].Prompt); n > 80_000 {
		t.Errorf("prompt length = %d, want the diff cut to about 60,000 characters", n)
	}
}

// The list of files left out of the prompt is worked out while building the
// prompt, which a retry that reuses the stored answer does not do; a retry
// must still name them: the omitted files are stored with the answer.
func TestPullRequestRetryKeepsFilesNotReviewed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		crash func(t *testing.T, h *harness, id int64)
	}{
		{
			name: "after storing the answer, before posting",
			crash: func(t *testing.T, h *harness, id int64) {
				h.github.FailNext("POST", "/repos/acme/app/issues/8/comments", 502, 1)
				if err := h.p.Process(t.Context(), id, "job-1"); err == nil {
					t.Fatalf("Process(%d) with GitHub answering 502 = nil, want an error", id)
				}
			},
		},
		{
			name: "after posting, before the ledger row",
			crash: func(t *testing.T, h *harness, id int64) {
				if err := h.p.Process(t.Context(), id, "job-1"); err != nil {
					t.Fatalf("Process(%d) = %v, want nil", id, err)
				}
				if _, err := h.st.DB.ExecContext(t.Context(), `DELETE FROM hw_writes`); err != nil {
					t.Fatal(err)
				}
				if _, err := h.st.DB.ExecContext(t.Context(), `UPDATE hw_deliveries SET status = 'queued' WHERE id = ?`, id); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config.Default(), reviewAnswer())
			omitted := bigPullRequest(h)
			id := h.deliver(t, "pull_request", fake.PullRequestEvent("opened", repo, 8, "Big change", "", headSHA, "alice", "", false))

			tt.crash(t, h, id)
			if err := h.p.Process(t.Context(), id, "job-1"); err != nil {
				t.Fatalf("Process(%d) after crash = %v, want nil", id, err)
			}

			c := h.onlyComment(t, 8)
			h.wantStatus(t, id, store.StatusDone)
			if got := h.model.Calls(); got != 1 {
				t.Errorf("model calls = %d, want 1", got)
			}
			for _, f := range omitted {
				if !strings.Contains(c.Body, "- "+f+"\n") {
					t.Errorf("review after retry does not list %s as not reviewed; body:\n%s", f, c.Body)
				}
			}
		})
	}
}

func TestDraftPullRequestIsSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), reviewAnswer())

	id := h.process(t, "pull_request", fake.PullRequestEvent("opened", repo, 9, "WIP", "", headSHA, "alice", "", true))

	d := h.wantStatus(t, id, store.StatusSkipped)
	if d.Reason != "draft: draft pull request" {
		t.Errorf("skip reason = %q, want %q", d.Reason, "draft: draft pull request")
	}
	if got := h.model.Calls(); got != 0 {
		t.Errorf("model calls = %d, want 0", got)
	}
	if got := h.github.Comments(repo, 9); len(got) != 0 {
		t.Errorf("comments on #9 = %q, want none", bodies(got))
	}
}

// closed marks an issue payload's thread closed.
func closed(payload []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		panic(err)
	}
	m["issue"].(map[string]any)["state"] = "closed"
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestSkipsWithoutModelCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		event      string
		payload    []byte
		wantReason string // a substring of the recorded reason
	}{
		{
			name:       "dependabot",
			event:      "issues",
			payload:    fake.IssueEvent("opened", repo, 1, "Bump x", "", "dependabot[bot]"),
			wantReason: "sent by a bot (dependabot[bot])",
		},
		{
			name:       "hookwise itself",
			event:      "issues",
			payload:    fake.IssueEvent("opened", repo, 1, "Follow-up", "", "hookwise-bot"),
			wantReason: "sent by hookwise itself",
		},
		{
			name:       "successful workflow run",
			event:      "workflow_run",
			payload:    fake.WorkflowRunEvent(repo, 42, "CI", "success", headSHA, 5),
			wantReason: `workflow run concluded "success", not failure`,
		},
		{
			name:       "star",
			event:      "star",
			payload:    fake.StarEvent(repo, "alice"),
			wantReason: "no_handler: star.created has no handler",
		},
		{
			name:       "issue written by hookwise",
			event:      "issues",
			payload:    fake.IssueEvent("opened", repo, 3, "Follow-up", "Split out.\n\n<!-- hookwise:issue-analysis acme/app#1 -->", "alice"),
			wantReason: "issue carries hookwise's marker",
		},
		{
			name:       "label added",
			event:      "issues",
			payload:    fake.IssueEvent("labeled", repo, 1, "Panic on start", "It panics.", "alice"),
			wantReason: "admin: issues.labeled is bookkeeping",
		},
		{
			name:       "almost no content",
			event:      "issues",
			payload:    fake.IssueEvent("opened", repo, 1, "help", "<!-- Describe the bug here -->\n.", "alice"),
			wantReason: "low_content: title and body have 4 letters or digits (min_content_chars 15)",
		},
		{
			name:       "closed issue edited",
			event:      "issues",
			payload:    closed(fake.IssueEvent("edited", repo, 1, "Panic on start", "It panics.", "alice")),
			wantReason: "closed: thread is closed",
		},
		{
			name:       "bot login from the config",
			event:      "issues",
			payload:    fake.IssueEvent("opened", repo, 1, "Nightly report", "All green tonight, nothing to do.", "ci-robot"),
			wantReason: "bot: sent by a configured bot (ci-robot)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.GitHub.BotLogins = []string{"ci-robot"}
			h := newHarness(t, cfg, nil)

			id := h.process(t, tt.event, tt.payload)

			d := h.wantStatus(t, id, store.StatusSkipped)
			if !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("skip reason = %q, want it to contain %q", d.Reason, tt.wantReason)
			}
			if got := h.model.Calls(); got != 0 {
				t.Errorf("model calls = %d, want 0", got)
			}
			if _, writes := h.github.Stats(); writes != 0 {
				t.Errorf("GitHub writes = %d, want 0", writes)
			}
		})
	}
}

func TestWorkflowRunFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		prs  []int
	}{
		{name: "on two pull requests", prs: []int{5, 6}},
		{name: "on no pull request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config.Default(), workflowAnswer())
			h.github.AddWorkflowJobs(repo, 42, []fake.WorkflowJob{
				{Name: "build", Conclusion: "success"},
				{Name: "test", Conclusion: "failure", Steps: []fake.WorkflowStep{{Name: "go test", Conclusion: "failure"}}},
			})

			id := h.process(t, "workflow_run", fake.WorkflowRunEvent(repo, 42, "CI", "failure", headSHA, tt.prs...))

			for _, n := range tt.prs {
				c := h.onlyComment(t, n)
				if !strings.Contains(c.Body, "Inject the clock.") || !pipeline.HasMarker(c.Body) {
					t.Errorf("comment on #%d = %q, want the suggested fix and a marker", n, c.Body)
				}
			}
			if _, writes := h.github.Stats(); len(tt.prs) == 0 && writes != 0 {
				t.Errorf("GitHub writes = %d, want 0", writes)
			}
			h.wantStatus(t, id, store.StatusDone)
			a, err := h.st.Analysis(t.Context(), id)
			if err != nil {
				t.Fatalf("Analysis(%d) = %v, want the stored answer", id, err)
			}
			if !strings.Contains(a.Result, "Inject the clock.") {
				t.Errorf("Analysis(%d).Result = %s, want the model's answer", id, a.Result)
			}
			reqs := h.model.Requests()
			if len(reqs) != 1 {
				t.Fatalf("model requests = %d, want 1", len(reqs))
			}
			if !strings.Contains(reqs[0].Prompt, "go test") {
				t.Errorf("prompt = %q, want the failed step %q", reqs[0].Prompt, "go test")
			}
		})
	}
}

// temporary reports what err says of itself through Temporary, and whether
// it says anything.
func temporary(err error) (temp, ok bool) {
	var t interface{ Temporary() bool }
	if !errors.As(err, &t) {
		return false, false
	}
	return t.Temporary(), true
}

func TestPermanentErrorsFailDelivery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		inject     func(h *harness)
		wantReason []string // substrings of the recorded reason, any of which will do
		wantCalls  int
	}{
		{
			name:       "model rejects the API key",
			inject:     func(h *harness) { h.model.FailNext(401, "authentication_error", 1, 0) },
			wantReason: []string{"401", "authentication"},
			wantCalls:  0,
		},
		{
			name:       "GitHub refuses the comment",
			inject:     func(h *harness) { h.github.FailNext("POST", "/repos/acme/app/issues/1/comments", 404, 1) },
			wantReason: []string{"404"},
			wantCalls:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config.Default(), issueAnswer(nil, false, ""))
			tt.inject(h)
			id := h.deliver(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))

			err := h.p.Process(t.Context(), id, "job-1")
			if err == nil {
				t.Fatalf("Process(%d) = nil, want an error", id)
			}
			if temp, ok := temporary(err); !ok || temp {
				t.Errorf("Process(%d) = %v: Temporary() = %v (implemented %v), want false", id, err, temp, ok)
			}
			// The queue gives up on a permanent error at once.
			h.p.GaveUp(t.Context(), id, err)
			d := h.wantStatus(t, id, store.StatusFailed)
			for _, s := range tt.wantReason {
				if !strings.Contains(d.Reason, s) {
					t.Errorf("failure reason = %q, want it to mention %q", d.Reason, s)
				}
			}
			if got := h.model.Calls(); got != tt.wantCalls {
				t.Errorf("model calls = %d, want %d", got, tt.wantCalls)
			}
			if got := h.github.Comments(repo, 1); len(got) != 0 {
				t.Errorf("comments on #1 = %q, want none", bodies(got))
			}
		})
	}
}

func TestTemporaryModelError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lastAttempt bool
		wantStatus  string
	}{
		{lastAttempt: false, wantStatus: store.StatusQueued},
		{lastAttempt: true, wantStatus: store.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("lastAttempt=%v", tt.lastAttempt), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, config.Default(), issueAnswer(nil, false, ""))
			h.model.FailNext(529, "overloaded_error", 1, 0)
			id := h.deliver(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))

			err := h.p.Process(t.Context(), id, "job-1")
			if tt.lastAttempt {
				h.p.GaveUp(t.Context(), id, err)
			}
			if err == nil {
				t.Fatalf("Process(%d, %v) = nil, want an error", id, tt.lastAttempt)
			}
			if temp, ok := temporary(err); !ok || !temp {
				t.Errorf("Process(%d, %v) = %v: Temporary() = %v (implemented %v), want true", id, tt.lastAttempt, err, temp, ok)
			}
			d := h.wantStatus(t, id, tt.wantStatus)
			if tt.wantStatus == store.StatusFailed && !strings.Contains(d.Reason, "529") {
				t.Errorf("failure reason = %q, want it to mention 529", d.Reason)
			}
			if _, err := h.st.Analysis(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Analysis(%d) error = %v, want ErrNotFound", id, err)
			}

			if tt.lastAttempt {
				return
			}
			// The queue's next attempt succeeds and posts once.
			if err := h.p.Process(t.Context(), id, "job-1"); err != nil {
				t.Fatalf("retry Process(%d) = %v, want nil", id, err)
			}
			h.onlyComment(t, 1)
			h.wantStatus(t, id, store.StatusDone)
		})
	}
}

// A second job on a thread whose lease another job holds waits its turn:
// it asks to be retried later and calls nothing.
func TestSecondJobOnThreadWaits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), issueAnswer([]string{"bug"}, false, ""))
	ok, err := h.st.LockThread(t.Context(), repo+"#1", "job-other", time.Minute)
	if err != nil || !ok {
		t.Fatalf("LockThread = %v, %v", ok, err)
	}
	id := h.deliver(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))
	err = h.p.Process(t.Context(), id, "job-1")
	var ra interface{ RetryAfterDuration() time.Duration }
	if !errors.As(err, &ra) || ra.RetryAfterDuration() <= 0 {
		t.Fatalf("Process on a leased thread = %v, want an error asking to retry later", err)
	}
	if got := h.delivery(t, id).Status; got != store.StatusQueued {
		t.Errorf("status = %q, want queued", got)
	}
	if got := h.model.Calls(); got != 0 {
		t.Errorf("model calls = %d, want 0", got)
	}
}

// Replaying a delivery asks the model again and updates the comment it
// wrote, never posting a second one.
func TestReplayUpdatesComment(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newHarness(t, config.Default(), issueAnswer([]string{"bug"}, false, ""))
	id := h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))
	first := h.onlyComment(t, 1)
	err := h.st.Tx(ctx, func(tx *sql.Tx) error {
		if err := h.st.ForgetAnalysisTx(ctx, tx, id); err != nil {
			return err
		}
		if err := h.st.ReleaseWritesTx(ctx, tx, id); err != nil {
			return err
		}
		return h.st.SetDeliveryStatusTx(ctx, tx, id, store.StatusQueued, "replayed")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.p.Process(ctx, id, "job-2"); err != nil {
		t.Fatalf("Process after replay = %v", err)
	}
	second := h.onlyComment(t, 1)
	if second.ID != first.ID {
		t.Errorf("comment after replay = %d, want the same comment %d", second.ID, first.ID)
	}
	if got := h.model.Calls(); got != 2 {
		t.Errorf("model calls = %d, want 2 (replay asks again)", got)
	}
	if d := h.delivery(t, id); d.Status != store.StatusDone || !strings.Contains(d.Reason, "updated comment") {
		t.Errorf("delivery after replay = %q %q, want done with an updated comment", d.Status, d.Reason)
	}
}

// When the comment the ledger names is gone (edit answers 404), the next
// analysis of the thread still lands instead of failing for good.
func TestMissingLedgerCommentDoesNotBlockThread(t *testing.T) {
	t.Parallel()
	h := newHarness(t, config.Default(), issueAnswer([]string{"bug"}, false, ""))
	h.process(t, "issues", fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics.", "alice"))
	h.github.FailNext("PATCH", "/repos/"+repo+"/issues/comments/", 404, 1)
	id := h.process(t, "issues", fake.IssueEvent("edited", repo, 1, "Panic on start", "It panics on every start, with a stack trace in the log about a nil map.", "alice"))
	if d := h.delivery(t, id); d.Status != store.StatusDone {
		t.Errorf("delivery after a 404 edit = %q %q, want done", d.Status, d.Reason)
	}
	h.onlyComment(t, 1)
}
