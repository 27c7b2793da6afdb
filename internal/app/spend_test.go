package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/prompt"
	"github.com/hookwise/hookwise/internal/store"
)

// repoContext is what a maintainer would put in a repository's context
// setting; with the instructions and the schema it makes the stable prefix
// long enough for the API to cache (1,024 tokens for Sonnet 4.5).
const repoContext = `acme/app is a self-hosted scheduling service written in Go: a REST API
(internal/api), a cron-like planner (internal/plan), workers that run jobs in containers
(internal/run) and a PostgreSQL store (internal/db). Releases follow semantic versioning;
the latest is 3.2. Supported platforms are Linux on amd64 and arm64; macOS is for
development only. Bugs need a version, the platform and steps to reproduce; crashes need
the panic output. Feature requests should say what problem they solve before how.
Questions about deployment belong in Discussions, but answer them kindly and point there.
Labels: "bug" for wrong behaviour, "enhancement" for new behaviour, "question",
"documentation", "good first issue" only for small, well-specified tasks, "needs-info"
when the author must add something first. Security problems must never be discussed in
public: ask the author to use the security policy instead and do not repeat details.`

// on a realistic mixed stream, every
// thread that deserves an analysis gets exactly one, of its latest state; no
// call is made for anything else; the bill is at most 0.55x what the old
// service (one uncached call per delivery it handled) spends on the same
// stream; and the ledger's total equals the fake API's reported usage at
// the configured prices, to the cent.
func TestMixedStreamCostsOneAnalysisPerThread(t *testing.T) {
	t.Parallel()
	run := runMixedStream(t, 1)
	if run.ratio > 0.55 {
		t.Errorf("bill = %s, old service = %s: %.2fx, want at most 0.55x", cost.Dollars(run.micros), cost.Dollars(run.legacy), run.ratio)
	}
	t.Logf("mixed stream: %d deliveries, %d analyses; bill %s, old service %s (%d calls): %.2fx; cache reads %.0f%% of the cached prefix",
		run.deliveries, run.calls, cost.Dollars(run.micros), cost.Dollars(run.legacy), run.legacyCalls, run.ratio, 100*run.cacheShare)
}

// BenchmarkMixedStream runs the mixed stream and reports hookwise's bill as
// a share of the old service's on the same stream.
func BenchmarkMixedStream(b *testing.B) {
	for b.Loop() {
		run := runMixedStream(b, 1)
		b.ReportMetric(run.ratio, "bill/old-bill")
		b.ReportMetric(float64(run.micros)/1e6, "$/stream")
		b.ReportMetric(float64(run.calls), "calls/stream")
	}
}

type mixedRun struct {
	deliveries, calls, legacyCalls int
	micros, legacy                 int64
	ratio, cacheShare              float64
}

func runMixedStream(t testing.TB, scale int) mixedRun {
	t.Helper()
	stream := fake.NewStream(fake.StreamOptions{Seed: 7, Scale: scale})
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{apptest.GitHubToken}, RateLimit: 1_000_000})
	stream.Seed(github)
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: apptest.ModelKey, RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	r := apptest.Start(t, github, model, func(c *config.Config) {
		q := config.Duration(time.Second)
		c.Defaults.QuietPeriod = &q
		c.Defaults.Context = repoContext
		c.Queue.Workers = 32
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})
	client := &http.Client{Timeout: 30 * time.Second}
	codes, errs := stream.Send(t.Context(), client, r.Endpoint, apptest.Secret, 16)
	for i, code := range codes {
		if errs[i] != nil || code/100 != 2 {
			t.Fatalf("send item %d (%s) = %d, %v; want 2xx", i, stream.Items[i].Category, code, errs[i])
		}
	}
	unique := map[string]bool{}
	for _, it := range stream.Items {
		unique[it.Delivery.GUID] = true
	}
	settled(t, r.App.Store, len(unique), 2*time.Minute)

	// Exactly one analysis per deserving thread, of its latest state.
	reqs := model.Requests()
	for _, w := range stream.Want {
		// Which thread a prompt is about: its first line names it.
		about := map[string]string{"issue": fmt.Sprintf("issue #%d in ", w.Number), "review": fmt.Sprintf("pull request #%d in ", w.Number), "workflow": w.Latest}[w.Kind]
		var hits int
		for _, q := range reqs {
			if !strings.Contains(q.Prompt, about) {
				continue
			}
			if !strings.Contains(q.Prompt, w.Latest) {
				t.Errorf("%s %s#%d: a prompt lacks its latest state %q", w.Kind, w.Repo, w.Number, w.Latest)
			}
			hits++
			for _, s := range w.Stale {
				if strings.Contains(q.Prompt, s) {
					t.Errorf("%s %s#%d: the prompt holds the stale %q", w.Kind, w.Repo, w.Number, s)
				}
			}
		}
		if hits != 1 {
			t.Errorf("%s %s#%d: %d model calls saw its latest state (%s), want exactly 1", w.Kind, w.Repo, w.Number, hits, w.Latest)
		}
	}
	if len(reqs) != len(stream.Want) {
		t.Errorf("model calls = %d, want %d (one per deserving thread, none for the rest)", len(reqs), len(stream.Want))
	}
	for _, w := range stream.Want {
		if w.Kind == "review" {
			var reviews []string
			for _, c := range github.Comments(w.Repo, w.Number) {
				if strings.Contains(c.Body, "hookwise review of") {
					reviews = append(reviews, c.Body)
				}
			}
			if len(reviews) != 1 || !strings.Contains(reviews[0], w.Latest) {
				t.Errorf("pull request #%d: %d reviews, want one naming head %s", w.Number, len(reviews), w.Latest)
			}
		}
	}

	// The ledger against what the API reported, at the configured prices.
	_, total, err := r.App.Store.Costs(t.Context(), store.CostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	prices := cost.NewTable(nil)
	var reported float64
	for m, u := range model.Usage() {
		p := prices.For(m)
		reported += float64(u.InputTokens)*p.Input + float64(u.OutputTokens)*p.Output +
			float64(u.CacheCreationInputTokens)*p.CacheWrite + float64(u.CacheReadInputTokens)*p.CacheRead
	}
	if math.Abs(float64(total.CostMicros)-reported) >= 10_000 {
		t.Errorf("ledger total = %s, the API's usage at the configured prices = $%.6f: more than a cent apart",
			cost.Dollars(total.CostMicros), reported/1e6)
	}
	if int(total.Calls) != len(reqs) {
		t.Errorf("ledger calls = %d, model calls = %d", total.Calls, len(reqs))
	}

	legacy, legacyCalls := legacyBill(t, stream, github)
	run := mixedRun{deliveries: len(stream.Items), calls: len(reqs), legacyCalls: legacyCalls,
		micros: total.CostMicros, legacy: legacy, ratio: float64(total.CostMicros) / float64(legacy)}
	if prefix := total.CacheReadTokens + total.CacheWriteTokens; prefix > 0 {
		run.cacheShare = float64(total.CacheReadTokens) / float64(prefix)
	}
	return run
}

// settled waits until n deliveries are stored and none is queued.
func settled(t testing.TB, st *store.Store, n int, limit time.Duration) []store.Delivery {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ds, err := st.ListDeliveries(context.Background(), store.DeliveryFilter{Limit: 100_000})
		if err != nil {
			t.Fatal(err)
		}
		queued := 0
		for _, d := range ds {
			if d.Status == store.StatusQueued || d.Status == store.StatusWaiting {
				queued++
			}
		}
		if len(ds) >= n && queued == 0 {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d deliveries stored, %d still queued or waiting; want %d settled", limit, len(ds), queued, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// legacyBill is what the old service spends on the stream: one call per
// delivery it handled (redeliveries, bots and noise included), each with
// the same instructions and thread content hookwise sends, uncached, to
// the same model. Its answers come from the same fake, so output sizes are
// alike.
func legacyBill(t testing.TB, stream fake.Stream, github *fake.GitHub) (int64, int) {
	t.Helper()
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "legacy", RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	msrv := httptest.NewServer(model)
	defer msrv.Close()
	gsrv := httptest.NewServer(github)
	defer gsrv.Close()
	mc := claude.New(claude.Options{APIKey: "legacy", BaseURL: msrv.URL})
	ghc, err := gh.New(gh.Options{BaseURL: gsrv.URL + "/", Token: apptest.GitHubToken})
	if err != nil {
		t.Fatal(err)
	}
	prompts, err := prompt.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	modelName := config.Default().Anthropic.Model
	schema := map[string]any{"type": "object", "additionalProperties": false,
		"required": []string{"summary", "classification", "labels"},
		"properties": map[string]any{
			"summary":        map[string]any{"type": "string"},
			"classification": map[string]any{"type": "string"},
			"labels":         map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
		}}
	var micros int64
	calls := 0
	for _, it := range stream.Items {
		if !it.Legacy {
			continue
		}
		system, user := legacyPrompt(t, prompts, ghc, it.Delivery)
		res, err := mc.Complete(t.Context(), claude.Request{
			Model: modelName, Prompt: system + "\n\n" + user, Schema: schema, MaxTokens: 2048})
		if err != nil {
			t.Fatalf("legacy call: %v", err)
		}
		calls++
		micros += cost.For(modelName).Micros(cost.Usage{Input: res.Usage.InputTokens, Output: res.Usage.OutputTokens})
	}
	return micros, calls
}

func legacyPrompt(t testing.TB, prompts *prompt.Set, ghc *gh.Client, d fake.Delivery) (string, string) {
	t.Helper()
	var ev struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		PullRequest *struct {
			Number int    `json:"number"`
			Title  string `json:"title"`
			Body   string `json:"body"`
			User   struct {
				Login string `json:"login"`
			} `json:"user"`
			Head struct {
				Ref, SHA string
			} `json:"head"`
		} `json:"pull_request"`
		IssueObj *struct {
			Number int    `json:"number"`
			Title  string `json:"title"`
			Body   string `json:"body"`
		} `json:"issue"`
		Comment *struct {
			Body string `json:"body"`
		} `json:"comment"`
		WorkflowRun *struct {
			Name       string `json:"name"`
			HeadBranch string `json:"head_branch"`
			HeadSHA    string `json:"head_sha"`
		} `json:"workflow_run"`
	}
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	repoName := ev.Repository.FullName
	render := func(name string, data any) string {
		s, err := prompts.Render(name, data)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	repoBlock := render("repository.system", prompt.RepoData{Repo: repoName, Context: repoContext})
	switch {
	case ev.PullRequest != nil:
		pr := ev.PullRequest
		owner, name, _ := strings.Cut(repoName, "/")
		files, _, err := ghc.PullRequestFiles(context.Background(), gh.Repo{Owner: owner, Name: name}, pr.Number, 3000)
		if err != nil {
			t.Fatal(err)
		}
		data := prompt.PullRequestData{Thread: prompt.Thread{Repo: repoName, Number: pr.Number, Title: pr.Title, Body: pr.Body, Author: pr.User.Login},
			Head: pr.Head.Ref, HeadSHA: pr.Head.SHA}
		for _, f := range files {
			data.Files = append(data.Files, prompt.File{Name: f.Name, Status: f.Status, Additions: f.Additions, Deletions: f.Deletions, Patch: f.Patch})
		}
		return render("pull_request.system", data) + "\n\n" + repoBlock, render("pull_request.user", data)
	case ev.WorkflowRun != nil:
		run := ev.WorkflowRun
		data := prompt.WorkflowRunData{Repo: repoName, Name: run.Name, Branch: run.HeadBranch, HeadSHA: run.HeadSHA}
		return render("workflow_run.system", data) + "\n\n" + repoBlock, render("workflow_run.user", data)
	case ev.IssueObj != nil:
		is := ev.IssueObj
		th := prompt.Thread{Repo: repoName, Number: is.Number, Title: is.Title, Body: is.Body}
		if ev.Comment != nil {
			th.Comments = []prompt.Comment{{Author: "someone", Body: ev.Comment.Body}}
		}
		data := prompt.IssueData{Thread: th}
		return render("issue.system", data) + "\n\n" + repoBlock, render("issue.user", data)
	}
	t.Fatalf("legacy: delivery %s (%s) has no thread", d.GUID, d.Event)
	return "", ""
}

// with a daily budget of $1 and a stream
// that would cost about $3, spending stops at $1 plus at most one call;
// the rest is deferred, visibly; the 80% and 100% alerts fire once each.
func TestDailyBudgetHoldsAndAlertsOnce(t *testing.T) {
	t.Parallel()
	receiver := &fake.AlertWebhook{}
	asrv := httptest.NewServer(receiver)
	t.Cleanup(asrv.Close)
	// Prices ten times the list, so that a $3 stream is 150 issues.
	over := map[string]config.Price{"claude-sonnet-4-5": {Input: 30, Output: 150, CacheWrite: 37.5, CacheRead: 3}}
	h := start(t, 0, func(c *config.Config) {
		c.Anthropic.Prices = over
		c.Budget.Daily = 1
		c.Budget.AlertThresholds = []int{80, 100}
		c.Budget.AlertWebhook = config.Secret(asrv.URL)
		c.Defaults.Context = repoContext
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})
	const n = 150
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 1; i <= n; i++ {
		d := fake.Delivery{Event: "issues", GUID: fmt.Sprintf("budget-%d", i), HookID: "42",
			Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Planner skips run %d", i),
				strings.Repeat(fmt.Sprintf("When two jobs share the cron expression of job %d, the planner runs only one of them. ", i), 12), "alice")}
		if code, err := fake.Send(client, h.endpoint, secret, d); err != nil || code != http.StatusAccepted {
			t.Fatalf("send %s = %d, %v", d.GUID, code, err)
		}
	}
	ds := h.settle(t, n, 2*time.Minute)

	_, total, err := h.app.Store.Costs(t.Context(), store.CostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := h.app.Store.Costs(t.Context(), store.CostQuery{By: "repo"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("costs by repo = %v, %v", rows, err)
	}
	deferred, done := 0, 0
	for _, d := range ds {
		switch d.Status {
		case store.StatusDeferred:
			deferred++
			if !strings.Contains(d.Reason, "deferred until") {
				t.Errorf("deferred delivery %s: reason %q does not say until when", d.GUID, d.Reason)
			}
		case store.StatusDone:
			done++
		}
	}
	perCall := float64(total.CostMicros) / float64(total.Calls)
	wouldCost := perCall * n / 1e6
	t.Logf("budget $1: %d analysed for %s (%s a call), %d deferred; the whole stream would cost $%.2f",
		done, cost.Dollars(total.CostMicros), cost.Dollars(int64(perCall)), deferred, wouldCost)
	if wouldCost < 2.5 {
		t.Fatalf("the stream would cost $%.2f, want about $3 for the test to mean anything", wouldCost)
	}
	if limit := 1e6 + perCall*1.5; float64(total.CostMicros) > limit {
		t.Errorf("spent %s, want at most $1 plus one call", cost.Dollars(total.CostMicros))
	}
	if deferred == 0 || done+deferred != n {
		t.Errorf("%d done and %d deferred of %d, want the rest deferred", done, deferred, n)
	}
	texts := receiver.Texts()
	if len(texts) != 2 || !strings.Contains(texts[0], "80% of the daily budget used") || !strings.Contains(texts[1], "daily budget reached") {
		t.Errorf("alerts = %q, want the 80%% and then the 100%% alert, once each", texts)
	}
}

// across many analyses in one repository,
// most of the stable prefix (instructions, schema, repository context) is
// billed as cache reads.
func TestPromptPrefixIsBilledAsCacheReads(t *testing.T) {
	t.Parallel()
	h := start(t, 0, func(c *config.Config) {
		c.Defaults.Context = repoContext
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})
	const n = 60
	sendIssuesWith(t, h.endpoint, n)
	h.settle(t, n, time.Minute)
	_, total, err := h.app.Store.Costs(t.Context(), store.CostQuery{})
	if err != nil {
		t.Fatal(err)
	}
	share := float64(total.CacheReadTokens) / float64(total.CacheReadTokens+total.CacheWriteTokens)
	t.Logf("%d analyses: input %d, cache write %d, cache read %d tokens: %.0f%% of the prefix read from the cache; %s in all",
		total.Calls, total.InputTokens, total.CacheWriteTokens, total.CacheReadTokens, 100*share, cost.Dollars(total.CostMicros))
	if total.Calls != n || share < 0.8 {
		t.Errorf("%d calls, %.0f%% of the cached prefix read from the cache; want %d calls and at least 80%%", total.Calls, 100*share, n)
	}
	if total.CacheReadTokens <= total.InputTokens {
		t.Errorf("cache read %d tokens, uncached input %d: want most input billed as cache reads", total.CacheReadTokens, total.InputTokens)
	}
}

func sendIssuesWith(t *testing.T, endpoint string, n int) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 1; i <= n; i++ {
		d := fake.Delivery{Event: "issues", GUID: fmt.Sprintf("cache-%d", i), HookID: "42",
			Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Planner crash %d", i),
				fmt.Sprintf("Version 3.2 on Linux amd64: the planner panics with a nil map when job %d has no schedule.", i), "alice")}
		if code, err := fake.Send(client, endpoint, secret, d); err != nil || code != http.StatusAccepted {
			t.Fatalf("send %s = %d, %v", d.GUID, code, err)
		}
	}
}
