package app_test

import (
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/webhook/floodtest"
)

// Acceptance: while one address floods the running service's webhook,
// every delivery GitHub makes from another is acknowledged 2xx within
// 250 ms (p99), and each ends in exactly one comment on its issue.
func TestFloodEndsInOneCommentEach(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the whole service for 7 s, then waits for 1,000 analyses")
	}
	limit, rate, d := 250*time.Millisecond, floodtest.Rate, 5*time.Second
	if raceEnabled {
		// The race detector slows everything several times over: the bound
		// is then GitHub's own timeout, on a shorter, gentler run.
		limit, rate, d = 10*time.Second, floodtest.Rate/4, 5*time.Second
	}
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{apptest.GitHubToken}, RateLimit: 1_000_000})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: apptest.ModelKey, RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	r := apptest.Start(t, github, model, func(c *config.Config) {
		c.Queue.Workers = 16
		c.GitHub.WritesPerMinute, c.GitHub.WritesPerHour, c.GitHub.MaxConcurrency = 100_000, 1_000_000, 16
		c.Anthropic.MaxConcurrency = 16
		c.Budget.Daily = 0
		c.Defaults.MaxAnalysesPerAuthor = new(int)
	})

	flood, err := floodtest.Start(r.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flood.Stop() })
	time.Sleep(floodtest.Warmup)
	res := floodtest.Deliver(r.Endpoint, []byte(apptest.Secret), rate, d, floodtest.Issue)
	answered := flood.Stop()
	t.Logf("%s; flood posts answered %v", res, answered)
	if res.OK != res.Sent {
		t.Errorf("GitHub's deliveries during the flood: %d of %d 2xx (statuses %v), want all", res.OK, res.Sent, res.Statuses)
	}
	if res.P99 >= limit {
		t.Errorf("p99 of GitHub's deliveries during the flood = %.1f ms, want under %s", floodtest.MS(res.P99), limit)
	}

	start := time.Now()
	for _, dl := range settled(t, r.App.Store, res.Sent, 2*time.Minute) {
		if dl.Status == store.StatusFailed {
			t.Errorf("delivery %s failed: %s", dl.GUID, dl.Reason)
		}
	}
	t.Logf("%d deliveries settled %.1f s after the last was sent", res.Sent, time.Since(start).Seconds())
	for i := range res.Sent {
		n := floodtest.IssueNumber(i)
		var ours int
		for _, c := range github.Comments(floodtest.Repo, n) {
			if c.User == "hookwise-bot" {
				ours++
			}
		}
		if ours != 1 {
			t.Errorf("comments by hookwise-bot on %s#%d = %d, want 1", floodtest.Repo, n, ours)
		}
	}
}
