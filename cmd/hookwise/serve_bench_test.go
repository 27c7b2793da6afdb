package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/loadtest"
	"github.com/hookwise/hookwise/internal/store/storetest"
)

// The end-to-end benchmark's load: what an operator would send with
// `hookwise loadtest` to a deployment.
const (
	serveSenders  = 32
	serveRounds   = 3
	serveRequests = 20000
	// serveOpenedEvery makes 1 delivery in 50 an issues.opened that the
	// service analyses (a model call of serveModelLatency, a comment), so
	// that dispatch and processing run during the later rounds.
	serveOpenedEvery  = 50
	serveModelLatency = time.Second
	serveSecret       = "bench-secret"
)

// BenchmarkServe measures the running service as an operator would:
// `hookwise serve` as its own process with default settings (a fresh
// SQLite file, and a fresh PostgreSQL schema when HOOKWISE_TEST_DATABASE_URL
// is set), the fake GitHub and Anthropic as its upstreams, and
// `hookwise loadtest` as a separate process sending serveRounds rounds of
// serveRequests 11.5 KB deliveries from serveSenders senders. The
// reference is a bare process (testdata/bare) that reads the body, checks
// the signature and answers 202, driven the same way first. b.N is
// ignored: one run takes minutes. See BENCHMARKS.md.
func BenchmarkServe(b *testing.B) {
	bin := buildBinary(b)
	bare := filepath.Join(b.TempDir(), "bare")
	if out, err := exec.Command("go", "build", "-o", bare, "./testdata/bare").CombinedOutput(); err != nil {
		b.Fatalf("go build bare: %v\n%s", err, out)
	}
	b.Run("sqlite", func(b *testing.B) {
		benchServe(b, bin, bare, filepath.Join(b.TempDir(), "hookwise.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		benchServe(b, bin, bare, storetest.PostgresURL(b))
	})
}

func benchServe(b *testing.B, bin, bare, databaseURL string) {
	for range b.N {
		// The bare reference first, alone on the machine.
		bareAddr := startBare(b, bare)
		var bareRounds []loadtest.Summary
		for range serveRounds {
			bareRounds = append(bareRounds, loadRound(b, bin, "http://"+bareAddr+"/webhook", 0))
		}

		_, _, upstream := upstreams(b, serveModelLatency)
		dir := b.TempDir()
		addr := freeAddr(b)
		env := append([]string{"HOOKWISE_LISTEN=" + addr, "HOOKWISE_DATABASE_URL=" + databaseURL,
			"HOOKWISE_LOG_FORMAT=json", "GITHUB_WEBHOOK_SECRET=" + serveSecret}, upstream...)
		startServe(b, bin, env, filepath.Join(dir, "hookwise.log"))
		waitReady(b, addr)
		// Back to back: each round meets the dispatch and processing of
		// the ones before it.
		var served []loadtest.Summary
		for range serveRounds {
			served = append(served, loadRound(b, bin, "http://"+addr+"/webhook", serveOpenedEvery))
		}
		reportServe(b, bareRounds, served)
	}
}

// startBare starts the bare reference process and returns its address.
func startBare(b *testing.B, bare string) string {
	b.Helper()
	cmd := exec.Command(bare, "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+serveSecret)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("bare: no address: %v", err)
	}
	return strings.TrimSpace(addr)
}

// loadRound runs one round of `hookwise loadtest` against url and
// returns its summary. Answers other than 2xx are reported, not fatal.
func loadRound(b *testing.B, bin, url string, openedEvery int) loadtest.Summary {
	b.Helper()
	cmd := exec.Command(bin, "loadtest", "--url", url, "--requests", fmt.Sprint(serveRequests),
		"--concurrency", fmt.Sprint(serveSenders), "--opened-every", fmt.Sprint(openedEvery), "--json", "--quiet")
	cmd.Env = append(os.Environ(), "GITHUB_WEBHOOK_SECRET="+serveSecret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var s loadtest.Summary
	if jerr := json.Unmarshal(stdout.Bytes(), &s); jerr != nil {
		b.Fatalf("loadtest: %v %v\n%s", err, jerr, stderr.String())
	}
	return s
}

// reportServe logs each round and reports the service's worst round
// against the bare reference's mean.
func reportServe(b *testing.B, bare, served []loadtest.Summary) {
	b.Helper()
	var bareRate float64
	for i, s := range bare {
		bareRate += s.ReqPerSec / float64(len(bare))
		b.Logf("bare  round %d: %7.0f req/s  p50 %6.1f ms  p99 %6.1f ms  max %7.1f ms  non-2xx %d",
			i+1, s.ReqPerSec, s.P50ms, s.P99ms, s.MaxMs, s.Failed)
	}
	worstRatio, worstP99, meanRate, failed := 1e9, 0.0, 0.0, 0
	for i, s := range served {
		ratio := s.ReqPerSec / bareRate
		worstRatio, worstP99 = min(worstRatio, ratio), max(worstP99, s.P99ms)
		meanRate += s.ReqPerSec / float64(len(served))
		failed += s.Failed
		b.Logf("serve round %d: %7.0f req/s  %.2f× bare  p50 %6.1f ms  p99 %6.1f ms  max %7.1f ms  non-2xx %d %v %v",
			i+1, s.ReqPerSec, ratio, s.P50ms, s.P99ms, s.MaxMs, s.Failed, s.Status, s.Errors)
	}
	b.ReportMetric(bareRate, "bare-req/s")
	b.ReportMetric(meanRate, "serve-req/s")
	b.ReportMetric(meanRate/bareRate, "ratio")
	b.ReportMetric(worstRatio, "worst-ratio")
	b.ReportMetric(worstP99, "worst-p99-ms")
	b.ReportMetric(float64(failed), "non-2xx")
}
