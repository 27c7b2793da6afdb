package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/hookwise/hookwise/internal/logtest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// buildBinary compiles hookwise once for the tests that run it as a process.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hookwise")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// upstreams serves fakes of GitHub and Anthropic (model latency as given,
// limits out of the way) for hookwise processes, and returns the
// environment that points hookwise at them.
func upstreams(t testing.TB, latency time.Duration) (*fake.GitHub, *fake.Anthropic, []string) {
	t.Helper()
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}, RateLimit: 1_000_000})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key", Latency: latency,
		RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
	ghSrv := httptest.NewServer(github)
	t.Cleanup(ghSrv.Close)
	modelSrv := httptest.NewServer(model)
	t.Cleanup(modelSrv.Close)
	return github, model, []string{"GITHUB_TOKEN=gh-token", "GITHUB_API_URL=" + ghSrv.URL + "/",
		"ANTHROPIC_API_KEY=model-key", "ANTHROPIC_BASE_URL=" + modelSrv.URL}
}

// writeConfig writes a hookwise YAML configuration into dir.
func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "hookwise.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd *exec.Cmd
	log *os.File
}

func startServe(t testing.TB, bin string, env []string, logPath string) *proc {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logFile}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		logFile.Close()
	})
	return p
}

func waitReady(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("hookwise on %s not ready after 30s", addr)
}

// TestSIGKILLLosesNothing acknowledges 2,000 new issues, then kills
// hookwise with SIGKILL five times while model calls (0.5 s each) are under
// way, starting it again each time. Every acknowledged delivery must end
// with exactly one comment, and the jobs each kill left running must be
// finished within 2 minutes of the restart. The job timeout and rescue
// delay are the defaults (2 and 5 minutes): the restart takes its
// predecessor's running jobs back at once instead of waiting for them.
func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hookwise as a process for about a minute")
	}
	const (
		n     = 2000
		kills = 5
	)
	bin := buildBinary(t)
	github, model, upstream := upstreams(t, 500*time.Millisecond)
	dir := t.TempDir()
	// 2,000 issues by one author: neither the daily budget nor the cap on
	// an author's analyses may hold them here; both have tests of their own.
	cfgPath := writeConfig(t, dir, "queue:\n  workers: 100\nanthropic:\n  max_concurrency: 100\ngithub:\n  writes_per_minute: 100000\n  writes_per_hour: 1000000\n  max_concurrency: 100\nshutdown_timeout: 2s\n"+
		"budget:\n  daily: 0\ndefaults:\n  max_analyses_per_author: 0\n")
	addr := freeAddr(t)
	dbPath := filepath.Join(dir, "hookwise.db")
	env := append([]string{"HOOKWISE_CONFIG=" + cfgPath, "HOOKWISE_LISTEN=" + addr, "HOOKWISE_DATABASE_URL=" + dbPath,
		"HOOKWISE_LOG_FORMAT=json", "GITHUB_WEBHOOK_SECRET=kill-secret"}, upstream...)
	logPath := filepath.Join(dir, "hookwise.log")
	running := startServe(t, bin, env, logPath)
	waitReady(t, addr)

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var wg sync.WaitGroup
	next := make(chan int)
	var failed sync.Map
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d := fake.Delivery{Event: "issues", GUID: fmt.Sprintf("kill-%05d", i),
					Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Bug %d", i), "Saving a file with a long name fails with EINVAL on Linux.", "bob")}
				if code, err := fake.Send(client, "http://"+addr+"/webhook", "kill-secret", d); err != nil || code != http.StatusAccepted {
					failed.Store(i, fmt.Sprint(code, err))
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("delivery %v not acknowledged: %v", k, v); return true })

	for k := 1; k <= kills; k++ {
		// Kill while work is in flight: some analyses done, many not.
		target := model.Calls() + 150
		deadline := time.Now().Add(60 * time.Second)
		for model.Calls() < target && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := running.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = running.cmd.Wait()
		orphans := runningIssues(t, dbPath)
		commented := countCommented(github, n)
		t.Logf("kill %d: after %d model calls, %d issues commented, %d jobs left running", k, model.Calls(), commented, len(orphans))
		if commented >= n || len(orphans) == 0 {
			t.Fatalf("kill %d came when nothing was in flight; the test proves nothing", k)
		}

		running = startServe(t, bin, env, logPath)
		restarted := time.Now()
		waitReady(t, addr)
		for !allCommented(github, orphans) && time.Since(restarted) < 2*time.Minute {
			time.Sleep(20 * time.Millisecond)
		}
		if !allCommented(github, orphans) {
			t.Fatalf("kill %d: the %d jobs left running were not finished within 2 minutes of the restart", k, len(orphans))
		}
		t.Logf("kill %d: the jobs left running were finished %s after the restart", k, time.Since(restarted).Round(time.Millisecond))
	}

	deadline := time.Now().Add(4 * time.Minute)
	for countCommented(github, n) < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	// Let anything that would post twice have its chance.
	time.Sleep(2 * time.Second)
	for i := 1; i <= n; i++ {
		if got := len(github.Comments("acme/app", i)); got != 1 {
			t.Errorf("issue #%d has %d comments, want exactly 1", i, got)
		}
	}
	stats := fetchStats(t, addr)
	if stats.ByStatus["done"] != n {
		t.Errorf("stats by_status = %v, want %d done", stats.ByStatus, n)
	}
}

// runningIssues reads, from the database of a killed hookwise, the issue
// numbers whose processing jobs it left running.
func runningIssues(t *testing.T, dbPath string) []int {
	t.Helper()
	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.DB.Query(`SELECT d.guid FROM river_job j JOIN hw_deliveries d
		ON d.id = json_extract(j.args, '$.delivery_id') WHERE j.state = 'running' AND j.kind = 'process_delivery'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var issues []int
	for rows.Next() {
		var guid string
		var i int
		if err := rows.Scan(&guid); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Sscanf(guid, "kill-%05d", &i); err != nil {
			t.Fatalf("unexpected GUID %q", guid)
		}
		issues = append(issues, i)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return issues
}

func allCommented(g *fake.GitHub, issues []int) bool {
	for _, i := range issues {
		if len(g.Comments("acme/app", i)) == 0 {
			return false
		}
	}
	return true
}

func countCommented(g *fake.GitHub, n int) int {
	c := 0
	for i := 1; i <= n; i++ {
		if len(g.Comments("acme/app", i)) > 0 {
			c++
		}
	}
	return c
}

func fetchStats(t *testing.T, addr string) (s struct {
	ByStatus map[string]int `json:"by_status"`
}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/v1/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDemo runs `hookwise demo` as a newcomer would and checks its table.
func TestDemo(t *testing.T) {
	var out, errOut logtest.Buffer
	if err := run([]string{"demo"}, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"demo-1", "duplicate: ignored", "analysed", "sent by a bot", "not failure", "star.created has no handler", "coalesced", "low_content"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	// A newcomer's first run shows no warnings or errors.
	for _, bad := range []string{"level=WARN", "level=ERROR"} {
		if strings.Contains(out.String()+errOut.String(), bad) {
			t.Errorf("demo logged %s:\n%s%s", bad, errOut.String(), out.String())
		}
	}
}

// TestSIGTERMShutsDownCleanly checks that hookwise stops on SIGTERM within
// its shutdown timeout and exits 0.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hookwise as a process")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	env := []string{"HOOKWISE_LISTEN=" + addr, "HOOKWISE_DATABASE_URL=" + filepath.Join(dir, "db"), "HOOKWISE_CONFIG=",
		"GITHUB_WEBHOOK_SECRET=x", "GITHUB_TOKEN=t", "ANTHROPIC_API_KEY=k", "GITHUB_API_URL=http://127.0.0.1:1/",
		"ANTHROPIC_BASE_URL=http://127.0.0.1:1", "HOOKWISE_METRICS_LISTEN=" + metricsAddr}
	p := startServe(t, bin, env, filepath.Join(dir, "log"))
	waitReady(t, metricsAddr)
	get := func(addr, path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	metrics := func(addr string) (int, string) { return get(addr, "/metrics") }
	// With metrics_listen, the webhook's port serves the webhook and
	// /healthz only; metrics, readiness and the admin API (no token set, on
	// a loopback listener) are on metrics_listen.
	if code, body := metrics(metricsAddr); code != http.StatusOK || !strings.Contains(body, "hookwise_jobs{") {
		t.Errorf("GET %s/metrics (metrics_listen) = %d %.200s, want 200 with hookwise_jobs", metricsAddr, code, body)
	}
	for path, want := range map[string]int{"/metrics": 404, "/readyz": 404, "/api/v1/stats": 404, "/healthz": 200} {
		if code, _ := get(addr, path); code != want {
			t.Errorf("GET %s%s (listen) = %d, want %d when metrics_listen is set", addr, path, code, want)
		}
	}
	for _, path := range []string{"/readyz", "/api/v1/stats", "/healthz"} {
		if code, body := get(metricsAddr, path); code != http.StatusOK {
			t.Errorf("GET %s%s (metrics_listen) = %d %.200s, want 200", metricsAddr, path, code, body)
		}
	}
	// The container health check, which has no shell or curl to use.
	healthcheck := func() (string, error) {
		cmd := exec.Command(bin, "healthcheck")
		cmd.Env = append(os.Environ(), "HOOKWISE_LISTEN="+addr, "HOOKWISE_METRICS_LISTEN="+metricsAddr, "HOOKWISE_CONFIG=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := healthcheck(); err != nil || !strings.Contains(out, "ready") {
		t.Errorf("hookwise healthcheck while serving = %q, %v; want ready, exit 0", out, err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("hookwise after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("hookwise still running 45s after SIGTERM")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("GET /healthz answered after shutdown, want connection refused")
	}
	if code, _ := metrics(metricsAddr); code != 0 {
		t.Errorf("GET /metrics on metrics_listen after shutdown = %d, want connection refused", code)
	}
	if out, err := healthcheck(); err == nil {
		t.Errorf("hookwise healthcheck after shutdown = %q, exit 0; want a failure", out)
	}
	if log, err := os.ReadFile(filepath.Join(dir, "log")); err != nil || !strings.Contains(string(log), "budget: daily $5.00 (the default") {
		t.Errorf("start-up log does not say the default daily budget applies (%v):\n%.2000s", err, log)
	}
}

func TestVersion(t *testing.T) {
	var out, errOut logtest.Buffer
	if err := run([]string{"version"}, &out, &errOut); err != nil {
		t.Fatalf("version: %v\n%s", err, errOut.String())
	}
	got := strings.TrimSpace(out.String())
	if !strings.HasPrefix(got, "hookwise ") || !strings.HasSuffix(got, runtime.Version()) {
		t.Errorf("hookwise version = %q, want \"hookwise <version> … %s\"", got, runtime.Version())
	}
}
