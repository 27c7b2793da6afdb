package app_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

const secret = apptest.Secret

type harness struct {
	endpoint string
	github   *fake.GitHub
	model    *fake.Anthropic
	app      *app.App
}

// start runs a whole hookwise in-process against the fakes.
func start(t *testing.T, latency time.Duration, mutate func(*config.Config)) *harness {
	t.Helper()
	return startWith(t,
		fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}, RateLimit: 1_000_000}),
		fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key", Latency: latency, RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40}),
		mutate)
}

// startWith runs a whole hookwise in-process against the given fakes, which
// must accept apptest.GitHubToken and apptest.ModelKey, with 32 workers.
func startWith(t *testing.T, github *fake.GitHub, model *fake.Anthropic, mutate func(*config.Config)) *harness {
	t.Helper()
	r := apptest.Start(t, github, model, func(c *config.Config) {
		c.Anthropic.MaxConcurrency = 32
		c.Queue.Workers = 32
		// These tests send hundreds of threads by one author and measure
		// throughput: the cap on an author's analyses and the default
		// daily budget have tests of their own, and tests of budgets set
		// theirs.
		c.Defaults.MaxAnalysesPerAuthor = new(int)
		c.Budget.Daily = 0
		if mutate != nil {
			mutate(c)
		}
	})
	return &harness{endpoint: r.Endpoint, github: github, model: model, app: r.App}
}

// settle waits until n deliveries are stored and none is still queued.
func (h *harness) settle(t *testing.T, n int, limit time.Duration) []store.Delivery {
	t.Helper()
	return settled(t, h.app.Store, n, limit)
}

// TestRedeliveriesCostOnce sends 250 distinct deliveries 1,400 times in all:
// bursts of 20 concurrent copies, then later redeliveries of the same GUIDs.
// Each distinct delivery must cost one model call and one comment.
func TestRedeliveriesCostOnce(t *testing.T) {
	// 250 comments: raise the write pace, which the write-pace test covers.
	h := start(t, 20*time.Millisecond, func(c *config.Config) {
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})
	const distinct = 250
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	delivery := func(i int) fake.Delivery {
		return fake.Delivery{Event: "issues", GUID: fmt.Sprintf("guid-%04d", i), HookID: "42",
			Payload: fake.IssueEvent("opened", "acme/app", i+1, fmt.Sprintf("Crash number %d", i), "It crashes when I click the button twice. Stack trace attached.", "alice")}
	}
	send := func(d fake.Delivery) {
		code, err := fake.Send(client, h.endpoint, secret, d)
		if err != nil || code != http.StatusAccepted {
			t.Errorf("send %s = %d, %v; want 202", d.GUID, code, err)
		}
	}
	sent := 0
	var mu sync.Mutex
	// 40 deliveries arrive as bursts of 20 concurrent copies: 800 requests.
	for i := range 40 {
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() { defer wg.Done(); send(delivery(i)) }()
		}
		wg.Wait()
		sent += 20
	}
	// The other 210 arrive once each, concurrently: 210 requests.
	var wg sync.WaitGroup
	for i := 40; i < distinct; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(delivery(i))
			mu.Lock()
			sent++
			mu.Unlock()
		}()
	}
	wg.Wait()
	h.settle(t, distinct, 60*time.Second)
	// Later redeliveries of already handled deliveries: 390 more requests.
	for i := range 390 {
		send(delivery(i % distinct))
		sent++
	}
	if sent != 1400 {
		t.Fatalf("sent %d requests, want 1400", sent)
	}
	ds := h.settle(t, distinct, 60*time.Second)
	if len(ds) != distinct {
		t.Errorf("stored deliveries = %d, want %d", len(ds), distinct)
	}
	if got := h.model.Calls(); got != distinct {
		t.Errorf("model calls = %d, want %d", got, distinct)
	}
	comments := 0
	for i := range distinct {
		n := len(h.github.Comments("acme/app", i+1))
		if n != 1 {
			t.Errorf("issue #%d has %d comments, want 1", i+1, n)
		}
		comments += n
	}
	if comments != distinct {
		t.Errorf("comments = %d, want %d", comments, distinct)
	}
	metrics := h.get(t, "/metrics")
	for _, want := range []string{
		fmt.Sprintf(`hookwise_upstream_requests_total{code="201",method="post",upstream="github"} %d`, distinct),
		fmt.Sprintf(`hookwise_github_comments_posted_total %d`, distinct),
		fmt.Sprintf(`hookwise_webhook_deliveries_total{event="issues",outcome="accepted"} %d`, distinct),
		fmt.Sprintf(`hookwise_webhook_deliveries_total{event="issues",outcome="duplicate"} %d`, 1400-distinct),
		fmt.Sprintf(`hookwise_deliveries_processed_total{event="issues",outcome="done"} %d`, distinct),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func (h *harness) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(h.endpoint, "/webhook") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", path, resp.StatusCode, err)
	}
	return string(b)
}
