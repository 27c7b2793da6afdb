package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

const (
	demoSecret = "demo-webhook-secret"
	demoRepo   = "acme/widgets"
	demoHead   = "3f786850e387550fdab836ed7e6dc881de23001b"
)

// runDemo runs the whole pipeline in this process against the fakes of
// GitHub and Anthropic, on a temporary database, and prints what happened
// to out; warnings (and with keep, the service's log) go to logs.
func runDemo(ctx context.Context, out, logs io.Writer, keep bool) error {
	dir, err := os.MkdirTemp("", "hookwise-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"demo-github-token"}})
	github.SetRepoLabels(demoRepo, []string{"bug", "enhancement", "question", "documentation", "invalid", "size/S", "size/M"})
	github.AddPullRequest(demoRepo, 7, []fake.PRFile{
		{Filename: "cache/lru.go", Status: "modified", Additions: 18, Deletions: 4,
			Patch: "@@ -40,6 +40,20 @@ func (c *LRU) Get(key string) (any, bool) {\n-\tc.mu.RLock()\n+\tc.mu.Lock()\n+\tdefer c.mu.Unlock()\n+\tel, ok := c.items[key]\n+\tif !ok {\n+\t\treturn nil, false\n+\t}\n+\tc.order.MoveToFront(el)\n"},
		{Filename: "cache/lru_test.go", Status: "added", Additions: 30, Patch: "@@ -0,0 +1,30 @@\n+func TestLRUConcurrentGet(t *testing.T) {\n+\t// 100 goroutines hit Get while Put evicts\n+}\n"},
		{Filename: "assets/logo.png", Status: "added"},
	})
	github.AddWorkflowJobs(demoRepo, 9001, []fake.WorkflowJob{
		{ID: 1, Name: "lint", Conclusion: "success"},
		{ID: 2, Name: "test (ubuntu-latest, go 1.26)", Conclusion: "failure", Steps: []fake.WorkflowStep{
			{Name: "Set up Go", Conclusion: "success", Number: 1}, {Name: "go test -race ./...", Conclusion: "failure", Number: 2}}},
	})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "demo-anthropic-key", Latency: 300 * time.Millisecond, Respond: demoAnswer})
	ghSrv := httptest.NewServer(github)
	defer ghSrv.Close()
	modelSrv := httptest.NewServer(model)
	defer modelSrv.Close()

	cfg := config.Default()
	cfg.DatabaseURL = filepath.Join(dir, "hookwise.db")
	cfg.GitHub.WebhookSecrets = []config.Secret{demoSecret}
	cfg.GitHub.Token = "demo-github-token"
	cfg.GitHub.APIURL = ghSrv.URL + "/"
	cfg.Anthropic.APIKey = "demo-anthropic-key"
	cfg.Anthropic.BaseURL = modelSrv.URL
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	// A short quiet period, so the demo shows an edit burst coalesced into
	// one analysis without a long wait.
	quiet := config.Duration(time.Second)
	cfg.Defaults.QuietPeriod = &quiet
	if err := cfg.Validate(); err != nil {
		return err
	}
	level := slog.LevelWarn
	if keep {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx, ln) }()
	endpoint := "http://" + ln.Addr().String() + "/webhook"

	deliveries := []fake.Delivery{
		{Event: "issues", GUID: "demo-1", Payload: fake.IssueEvent("opened", demoRepo, 1, "Cache returns stale values after eviction",
			"After upgrading to v2.3 the LRU cache sometimes returns a value that was evicted.\n\nSteps: fill the cache past capacity from 8 goroutines, then Get the oldest key.\nExpected: miss. Actual: the old value.", "maria")},
		{Event: "issues", GUID: "demo-2", Payload: fake.IssueEvent("opened", demoRepo, 2, "How do I set a TTL per entry?",
			"The README shows a global TTL. Is there a way to give one entry its own expiry?", "dev-kim")},
		{Event: "issues", GUID: "demo-2e", Payload: fake.IssueEvent("edited", demoRepo, 2, "How do I set a TTL per entry?",
			"The README shows a global TTL. Is there a way to give one entry its own expiry?\n\nEdit: I am on v2.3, and I need it for session tokens that expire at different times.", "dev-kim")},
		{Event: "issues", GUID: "demo-8", Payload: fake.IssueEvent("opened", demoRepo, 4, "help", "", "newcomer")},
		{Event: "issues", GUID: "demo-1", Payload: fake.IssueEvent("opened", demoRepo, 1, "Cache returns stale values after eviction",
			"After upgrading to v2.3 the LRU cache sometimes returns a value that was evicted.\n\nSteps: fill the cache past capacity from 8 goroutines, then Get the oldest key.\nExpected: miss. Actual: the old value.", "maria")},
		{Event: "pull_request", GUID: "demo-3", Payload: fake.PullRequestEvent("opened", demoRepo, 7, "Fix LRU race on Get",
			"Get moved an element while holding only the read lock. Fixes #1.", demoHead, "maria", "", false)},
		{Event: "issues", GUID: "demo-4", Payload: fake.IssueEvent("opened", demoRepo, 3, "Bump golang.org/x/net from 0.30 to 0.31",
			"Bumps golang.org/x/net.", "dependabot[bot]")},
		{Event: "workflow_run", GUID: "demo-5", Payload: fake.WorkflowRunEvent(demoRepo, 9001, "CI", "failure", demoHead, 7)},
		{Event: "workflow_run", GUID: "demo-6", Payload: fake.WorkflowRunEvent(demoRepo, 9002, "CI", "success", demoHead, 7)},
		{Event: "star", GUID: "demo-7", Payload: fake.StarEvent(demoRepo, "fan-42")},
	}
	answers := map[int]int{}
	client := &http.Client{Timeout: 10 * time.Second}
	for i, d := range deliveries {
		code, err := fake.Send(client, endpoint, demoSecret, d)
		if err != nil {
			stopRun()
			<-ran
			return fmt.Errorf("send %s: %w", d.GUID, err)
		}
		answers[i] = code
		// GitHub logs each attempt in the hook's delivery log, which the
		// redelivery sweep reads.
		github.AddHookDelivery("repo:"+demoRepo+"#1", fake.HookDeliveryRecord{GUID: d.GUID, StatusCode: code, Event: d.Event})
	}
	stored, err := waitSettled(ctx, a.Store, 45*time.Second)
	if err != nil {
		stopRun()
		<-ran
		return err
	}
	printDemo(ctx, out, a.Store, deliveries, answers, stored, github)
	if keep {
		fmt.Fprintf(out, "\nhookwise is still running: webhook %s, stats http://%s/api/v1/stats, metrics http://%s/metrics\nPress Ctrl-C to stop.\n",
			endpoint, ln.Addr(), ln.Addr())
		<-ctx.Done()
	}
	stopRun()
	return <-ran
}

// waitSettled waits until no stored delivery is still queued.
func waitSettled(ctx context.Context, st *store.Store, limit time.Duration) (map[string]store.Delivery, error) {
	deadline := time.Now().Add(limit)
	for {
		ds, err := st.ListDeliveries(ctx, store.DeliveryFilter{Limit: 500})
		if err != nil {
			return nil, err
		}
		byGUID := map[string]store.Delivery{}
		settled := true
		for _, d := range ds {
			byGUID[d.GUID] = d
			if d.Status == store.StatusQueued || d.Status == store.StatusWaiting {
				settled = false
			}
		}
		if settled {
			return byGUID, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("demo: deliveries still queued after " + limit.String())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func printDemo(ctx context.Context, out io.Writer, st *store.Store, sent []fake.Delivery, answers map[int]int,
	stored map[string]store.Delivery, github *fake.GitHub) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tEVENT\tHTTP\tDECISION\tTOKENS (in/out/cache read)\tCOST\tON GITHUB")
	seen := map[string]bool{}
	var micros int64
	for i, d := range sent {
		sd, ok := stored[d.GUID]
		decision, tokens, cost, did := "", "-", "-", "-"
		switch {
		case !ok:
			decision = "not stored"
		case seen[d.GUID]:
			decision = "duplicate: ignored"
		case sd.Status == store.StatusDone:
			decision = "analysed"
			did = sd.Reason
		default:
			decision = sd.Status + ": " + sd.Reason
		}
		if ok && !seen[d.GUID] {
			if an, err := st.Analysis(ctx, sd.ID); err == nil {
				tokens = fmt.Sprintf("%d/%d/%d", an.InputTokens, an.OutputTokens, an.CacheReadTokens)
				cost = fmt.Sprintf("$%.4f", float64(an.CostMicros)/1e6)
				micros += an.CostMicros
			}
		}
		seen[d.GUID] = true
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.GUID, stored[d.GUID].EventName(), answers[i], decision, tokens, cost, did)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nTotal model cost: $%.4f. Comments now on %s: #1 %d, #2 %d, #3 %d, #7 %d; labels on #1: %v\n",
		float64(micros)/1e6, demoRepo, len(github.Comments(demoRepo, 1)), len(github.Comments(demoRepo, 2)),
		len(github.Comments(demoRepo, 3)), len(github.Comments(demoRepo, 7)), github.Labels(demoRepo, 1))
}

// demoAnswer plays the model in the demo: answers of the right schema that
// read like what Claude would say about the demo's threads.
func demoAnswer(req fake.AnthropicRequest) (any, error) {
	props, _ := req.Schema["properties"].(map[string]any)
	switch {
	case props["classification"] != nil && strings.Contains(req.Prompt, "TTL"):
		return map[string]any{"classification": "question", "summary": "The author asks whether a single cache entry can have its own expiry.",
			"impact": "Documentation gap; no behaviour is broken.", "priority": "low", "complexity": "small",
			"plan": []string{"Point to SetWithTTL if it exists, otherwise consider adding it."}, "questions": []string{},
			"labels": []string{"question"}, "invalid": false, "close_reason": ""}, nil
	case props["classification"] != nil:
		return map[string]any{"classification": "bug", "summary": "Since v2.3 the LRU cache can return a value after it was evicted when used from several goroutines.",
			"impact": "Any concurrent user of the cache may read stale data.", "priority": "high", "complexity": "small",
			"plan":      []string{"Reproduce with a concurrent test under -race.", "Check the locking in LRU.Get, which reorders the list."},
			"questions": []string{"Which Go version and OS?"}, "labels": []string{"bug"}, "invalid": false, "close_reason": ""}, nil
	case props["findings"] != nil:
		return map[string]any{"summary": "Get now takes the write lock because it moves the element to the front; this fixes the race from #1.",
			"risk": "low", "findings": []map[string]any{{"file": "cache/lru.go", "line": 41, "severity": "minor",
				"message": "Every Get now serialises on one mutex; consider sharding if reads dominate."}},
			"labels": []string{"size/S"}, "not_reviewed": []string{}}, nil
	case props["likely_cause"] != nil:
		return map[string]any{"summary": "The test job failed in `go test -race ./...`.", "likely_cause": "The race detector flagged LRU.Get, fixed by this pull request's head commit.",
			"suggested_fix": "Re-run after the fix lands; add TestLRUConcurrentGet to guard it.", "flaky": false}, nil
	}
	return fake.AnthropicSchemaResponder(req)
}
