package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
)

// TestFleetSIGKILLLosesNothing runs three hookwise processes on one
// PostgreSQL database. 5,000 new issues are delivered round-robin, 30% of
// them twice to different instances, while one instance is killed with
// SIGKILL halfway through; the sender moves on to the next instance when
// one does not answer, as a load balancer would. Every issue must end with
// exactly one comment: the analysis, or, once the $4 daily budget is spent,
// the note saying so; and the whole fleet's spending may pass the budget by
// at most one call.
func TestFleetSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three hookwise processes for about a minute")
	}
	dbURL := storetest.PostgresURL(t)
	const (
		n         = 5000
		instances = 3
		budget    = 4.0
	)
	bin := buildBinary(t)
	github, model, upstream := upstreams(t, 200*time.Millisecond)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, fmt.Sprintf(`queue:
  workers: 40
  job_timeout: 10s
  rescue_after: 15s
anthropic:
  max_concurrency: 40
github:
  writes_per_minute: 100000
  writes_per_hour: 1000000
  max_concurrency: 40
budget:
  daily: %v
  on_limit: skip
defaults:
  quiet_period: 0s
  max_analyses_per_author: 0  # one author opens every issue: the budget must be what holds them
database_max_connections: 15
shutdown_timeout: 2s
`, budget))
	addrs := make([]string, instances)
	procs := make([]*proc, instances)
	for i := range instances {
		addrs[i] = freeAddr(t)
		env := append([]string{"HOOKWISE_CONFIG=" + cfgPath, "HOOKWISE_LISTEN=" + addrs[i], "HOOKWISE_DATABASE_URL=" + dbURL,
			"HOOKWISE_LOG_FORMAT=json", "GITHUB_WEBHOOK_SECRET=fleet-secret"}, upstream...)
		procs[i] = startServe(t, bin, env, filepath.Join(dir, fmt.Sprintf("hookwise-%d.log", i)))
	}
	for _, a := range addrs {
		waitReady(t, a)
	}
	defer logErrors(t, dir)

	// Deliveries in send order: each issue once, 30% of them again later,
	// to whichever instance the round robin gives.
	var order []fake.Delivery
	for i := 1; i <= n; i++ {
		order = append(order, fake.Delivery{Event: "issues", GUID: fmt.Sprintf("fleet-%05d", i), HookID: "7",
			Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Scheduler bug %d", i),
				fmt.Sprintf("Job %d is skipped when two jobs share a cron expression, since 3.2.", i), "bob")})
		if i%10 < 3 && i > 20 {
			order = append(order, order[len(order)-20]) // a redelivery of an earlier issue
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		sent    atomic.Int64
		killed  atomic.Bool
		wg      sync.WaitGroup
		failed  sync.Map
		jobs    = make(chan int)
		killAt  = int64(len(order) / 2)
		killErr = make(chan error, 1)
	)
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				d := order[k]
				var code int
				var err error
				// Round robin; an instance that does not answer is skipped,
				// as a load balancer's health check would.
				for try := range instances {
					code, err = fake.Send(client, "http://"+addrs[(k+try)%instances]+"/webhook", "fleet-secret", d)
					if err == nil && code != http.StatusServiceUnavailable {
						break
					}
				}
				if err != nil || code != http.StatusAccepted {
					failed.Store(d.GUID, fmt.Sprint(code, err))
				}
				if sent.Add(1) == killAt && !killed.Swap(true) {
					killErr <- procs[0].cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}()
	}
	for k := range order {
		jobs <- k
		if k%100 == 99 {
			time.Sleep(40 * time.Millisecond) // about 2,500 deliveries a second
		}
	}
	close(jobs)
	wg.Wait()
	if err := <-killErr; err != nil {
		t.Fatal(err)
	}
	_ = procs[0].cmd.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("delivery %v not acknowledged: %v", k, v); return true })
	t.Logf("sent %d deliveries (%d issues); killed instance 0 after %d, with %d model calls made", len(order), n, killAt, model.Calls())

	deadline := time.Now().Add(3 * time.Minute)
	for countCommented(github, n) < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let anything that would post twice have its chance
	analyses, notes := 0, 0
	for i := 1; i <= n; i++ {
		cs := github.Comments("acme/app", i)
		if len(cs) != 1 {
			t.Errorf("issue #%d has %d comments, want exactly 1", i, len(cs))
			continue
		}
		switch {
		case strings.Contains(cs[0].Body, "hookwise triage"):
			analyses++
		case strings.Contains(cs[0].Body, "budget for global is used up"):
			notes++
		default:
			t.Errorf("issue #%d: comment %q is neither an analysis nor a budget note", i, cs[0].Body)
		}
	}

	st, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, total, err := st.Costs(context.Background(), store.CostQuery{By: "model"})
	if err != nil {
		t.Fatal(err)
	}
	var most int64
	for _, r := range rows {
		if r.Calls > 0 {
			most = max(most, r.CostMicros/r.Calls*2) // a generous bound on one call
		}
	}
	t.Logf("%d analyses, %d budget notes; the fleet spent %s of the $%.2f budget in %d calls (%d model calls made)",
		analyses, notes, fmtUSD(total.CostMicros), budget, total.Calls, model.Calls())
	if float64(total.CostMicros) > budget*1e6+float64(most) {
		t.Errorf("the fleet spent %s, more than the $%.2f budget plus one call", fmtUSD(total.CostMicros), budget)
	}
	if notes == 0 || analyses == 0 {
		t.Errorf("%d analyses and %d notes: the budget must run out halfway for the test to mean anything", analyses, notes)
	}
	// What the API billed, calls lost to the kill included: a budget holds
	// against that, not only against what the ledger settled.
	var billed float64
	for m, u := range model.Usage() {
		p := cost.For(m)
		billed += float64(u.InputTokens)*p.Input + float64(u.OutputTokens)*p.Output +
			float64(u.CacheCreationInputTokens)*p.CacheWrite + float64(u.CacheReadInputTokens)*p.CacheRead
	}
	if billed > budget*1e6+float64(most) {
		t.Errorf("the API billed $%.4f, more than the $%.2f budget plus one call", billed/1e6, budget)
	}
	// A call answered while its process was killed is paid again by the
	// retry; at most the killed instance's workers' worth.
	if lost, settled := model.Calls()-analyses, int(total.Calls)-analyses; lost < 0 || lost > 40 || settled < 0 || settled > lost {
		t.Errorf("model calls %d, ledger calls %d, analyses posted %d: want each analysis paid once, bar the calls the kill cut off", model.Calls(), total.Calls, analyses)
	}
}

// logErrors prints, when the test has failed, the error lines of the
// instances' logs.
func logErrors(t *testing.T, dir string) {
	if !t.Failed() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "hookwise-*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		shown := 0
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, `"level":"ERROR"`) && shown < 20 {
				t.Logf("%s: %s", filepath.Base(l), strings.TrimSpace(line))
				shown++
			}
		}
	}
}

func fmtUSD(micros int64) string { return fmt.Sprintf("$%.4f", float64(micros)/1e6) }
