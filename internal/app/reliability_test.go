package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// sendIssues delivers n new issues on acme/app (#1..#n) from 32 senders and
// fails the test unless each is acknowledged.
func sendIssues(t *testing.T, endpoint string, n int) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	next := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d := fake.Delivery{Event: "issues", GUID: fmt.Sprintf("issue-%05d", i), HookID: "42",
					Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Crash number %d", i), "It crashes when I click the button twice. Stack trace attached.", "alice")}
				if code, err := fake.Send(client, endpoint, secret, d); err != nil || code != http.StatusAccepted {
					t.Errorf("send %s = %d, %v; want 202", d.GUID, code, err)
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// wantOneCommentEach checks that issues #1..#n have exactly one comment each
// and that every delivery is done: none failed (the dead letters).
func (h *harness) wantOneCommentEach(t *testing.T, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if got := len(h.github.Comments("acme/app", i)); got != 1 {
			t.Errorf("issue #%d has %d comments, want exactly 1", i, got)
		}
	}
	ds, err := h.app.Store.ListDeliveries(t.Context(), store.DeliveryFilter{Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, d := range ds {
		by[d.Status]++
	}
	if by[store.StatusDone] != n || len(ds) != n {
		t.Errorf("deliveries by status = %v, want all %d done (none in the dead-letter queue)", by, n)
	}
}

// with 15% of model calls answered 429 with
// retry-after, 15% answered 529, and 20% of GitHub writes answered 502
// after GitHub performed them (a proxy timing out: the nastier case, since
// a retry must find the comment rather than post it again), 1,000 new
// issues each end with exactly one comment, none in the dead-letter queue,
// all within 5 minutes.
func TestFaultsEndWithOneCommentEach(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 issues through faulty fakes")
	}
	t.Parallel()
	const n = 1000
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}, RateLimit: 1_000_000,
		WriteFaultRate: 0.2, WriteFaultAfter: true, Seed: 3})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key", Latency: 20 * time.Millisecond,
		RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40, Seed: 5, Faults: []fake.AnthropicFault{
			{Probability: 0.15, Status: http.StatusTooManyRequests, RetryAfter: time.Second},
			{Probability: 0.15, Status: 529},
		}})
	h := startWith(t, github, model, func(c *config.Config) {
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})
	began := time.Now()
	sendIssues(t, h.endpoint, n)
	h.settle(t, n, 5*time.Minute-time.Since(began))
	took := time.Since(began)
	h.wantOneCommentEach(t, n)
	answers := model.Answers()
	_, writes := github.Stats()
	t.Logf("%d issues done in %s; model answers by status %v; GitHub writes %d", n, took.Round(time.Second), answers, writes)
	if answers[http.StatusTooManyRequests] < n/10 || answers[529] < n/10 {
		t.Errorf("model answers %v: the faults did not happen as planned", answers)
	}
	if got := metricValue(t, h.get(t, "/metrics"), `hookwise_upstream_requests_total{code="502",method="post",upstream="github"}`); got < n/10 {
		t.Errorf("GitHub writes answered 502 = %v, want about %d: the faults did not happen as planned", got, n/5)
	}
}

// metricValue returns the value of one series in a Prometheus text page.
func metricValue(t *testing.T, page, series string) float64 {
	t.Helper()
	for line := range strings.Lines(page) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return v
		}
	}
	return 0
}

// against a model API that allows 600
// requests a minute (a token bucket sending anthropic-ratelimit-requests-*
// headers and answering 429 beyond), 1,200 analyses finish within 1.25x the
// least time the limit allows, with at most 1% of calls answered 429. The
// least time: the bucket's 600 at once, then 10 a second for the other 600,
// 60 s. (The old service paces at 1 request a second: 20 minutes.)
func TestModelPacingUsesTheLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("takes more than a minute")
	}
	t.Parallel()
	n, perMinute := 1200, 600
	if raceEnabled {
		// The race detector makes each analysis several times dearer in
		// CPU: at 600 a minute two cores would measure themselves, not
		// the pacer. A third of the rate still fills a minute.
		n, perMinute = 400, 200
	}
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}, RateLimit: 1_000_000})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key", Latency: 20 * time.Millisecond,
		RequestsPerMinute: int64(perMinute), TokensPerMinute: 1 << 40})
	h := startWith(t, github, model, func(c *config.Config) {
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 32
	})
	least := time.Duration(n-perMinute) * time.Minute / time.Duration(perMinute)
	began := time.Now()
	sendIssues(t, h.endpoint, n)
	h.settle(t, n, 3*least)
	took := time.Since(began)
	h.wantOneCommentEach(t, n)
	answers := model.Answers()
	t.Logf("%d analyses in %s (least %s, %.2fx); model answers by status %v", n, took.Round(100*time.Millisecond), least, float64(took)/float64(least), answers)
	if limit := least * 5 / 4; took > limit {
		t.Errorf("%d analyses took %s, want at most %s (1.25x the least %s)", n, took, limit, least)
	}
	if got := answers[http.StatusTooManyRequests]; got > n/100 {
		t.Errorf("%d calls answered 429, want at most %d (1%%)", got, n/100)
	}
}

// a burst of new issues never makes hookwise
// send one token more than github.writes_per_minute writes (the default,
// 80) in any minute, and the burst still completes.
func TestGitHubWritePace(t *testing.T) {
	if testing.Short() {
		t.Skip("takes more than a minute")
	}
	t.Parallel()
	const n = 100 // one comment each: 100 writes, more than a minute's worth
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}, RateLimit: 1_000_000})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key", RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	h := startWith(t, github, model, nil)
	perMinute := config.Default().GitHub.WritesPerMinute
	began := time.Now()
	sendIssues(t, h.endpoint, n)
	h.settle(t, n, 3*time.Minute)
	h.wantOneCommentEach(t, n)
	_, writes := github.Stats()
	most := github.MaxWritesInWindow(time.Minute)
	t.Logf("%d writes in %s; at most %d in any minute", writes, time.Since(began).Round(time.Second), most)
	if writes < n {
		t.Fatalf("GitHub saw %d writes, want at least %d", writes, n)
	}
	if most > perMinute {
		t.Errorf("one token got %d writes within a minute, want at most %d", most, perMinute)
	}
}

// While the database takes no writes, ingest answers 503 (never a false
// 2xx) and /readyz fails; once it takes writes again hookwise recovers
// without a restart, and what GitHub then redelivers is processed.
func TestStoreReadOnlyThenBack(t *testing.T) {
	t.Parallel()
	h := start(t, 0, nil)
	base := strings.TrimSuffix(h.endpoint, "/webhook")
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// SQLite's query_only is a database that answers reads and refuses
	// every write, like a read-only file or volume. It belongs to the
	// connection: set it on each of the pool's (holding them all at once,
	// so that none is missed), and before every probe, as the pool may
	// replace one.
	queryOnly := func(v string) {
		t.Helper()
		db := h.app.Store.DB
		var held []*sql.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range db.Stats().MaxOpenConnections {
			c, err := db.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			if _, err := c.ExecContext(context.Background(), `PRAGMA query_only = `+v); err != nil {
				t.Fatal(err)
			}
		}
	}
	// /readyz answers from a check at most a second old.
	readyz := func(want int, pragma string) int {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			queryOnly(pragma)
			if got := status("/readyz"); got == want || time.Now().After(deadline) {
				return got
			}
		}
	}
	send := func(guid string) int {
		t.Helper()
		d := fake.Delivery{Event: "issues", GUID: guid,
			Payload: fake.IssueEvent("opened", "acme/app", 1, "Crash on save", "Saving a file with a long name crashes.", "bob")}
		code, err := fake.Send(http.DefaultClient, h.endpoint, secret, d)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if got := status("/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz = %d before the outage, want 200", got)
	}
	queryOnly("ON")
	if got := send("during-outage"); got != http.StatusServiceUnavailable {
		t.Errorf("delivery while the store is read-only = %d, want 503", got)
	}
	if got := readyz(http.StatusServiceUnavailable, "ON"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the store is read-only = %d, want 503", got)
	}
	if got := readyz(http.StatusOK, "OFF"); got != http.StatusOK {
		t.Errorf("/readyz after the outage = %d, want 200", got)
	}
	// GitHub redelivers what it was refused (the sweeper asks it to).
	if got := send("during-outage"); got != http.StatusAccepted {
		t.Fatalf("redelivery after the outage = %d, want 202", got)
	}
	h.settle(t, 1, 20*time.Second)
	h.wantOneCommentEach(t, 1)
}
