package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// smokeTarget is a running deployment: nginx.conf in front of hookwise
// instances, each with its webhook port and its internal port
// (metrics_listen), and a dead replica first in nginx's pool.
type smokeTarget struct {
	lb         string   // nginx's base URL
	replica    string   // one replica's webhook port, as a base URL
	internal   []string // every replica's internal port, as base URLs
	dead       string   // host:port of the dead replica in nginx's pool
	accessLog  string   // nginx's access log, in nginx.conf's hookwise format
	metricsOut string   // where each replica's /metrics is saved for promtool; "" for nowhere
	bodyLimit  int      // the largest body the deployment must take: GitHub's 25 MiB
	secret     string   // the webhook secret hookwise was started with
	adminToken string   // the admin token hookwise was started with
}

func smokeCommand(ctx context.Context, args []string, stdout io.Writer) (problems, error) {
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	t := smokeTarget{bodyLimit: 25 << 20}
	var internal string
	fs.StringVar(&t.lb, "lb", "", "nginx's base URL")
	fs.StringVar(&t.replica, "replica", "", "one replica's webhook port, as a base URL")
	fs.StringVar(&internal, "internal", "", "every replica's internal port, as base URLs, comma-separated")
	fs.StringVar(&t.dead, "dead", "", "host:port of the dead replica in nginx's pool")
	fs.StringVar(&t.accessLog, "access-log", "", "nginx's access log")
	fs.StringVar(&t.metricsOut, "metrics-out", "", "save each replica's /metrics in this directory")
	if err := parseFlags(fs, args, 0, 0); err != nil {
		return nil, err
	}
	if err := requireFlags(fs, "lb", "replica", "internal", "dead", "access-log"); err != nil {
		return nil, err
	}
	t.internal = strings.Split(internal, ",")
	// From the environment, as hookwise takes them: not on a command line
	// every user of the machine can read.
	t.secret, t.adminToken = os.Getenv("GITHUB_WEBHOOK_SECRET"), os.Getenv("HOOKWISE_ADMIN_TOKEN")
	if t.secret == "" || t.adminToken == "" {
		return nil, fmt.Errorf("%w: smoke needs GITHUB_WEBHOOK_SECRET and HOOKWISE_ADMIN_TOKEN in its environment", errUsage)
	}
	return runSmoke(ctx, t, stdout), nil
}

// smoke runs the requests of one smoke test and keeps what went wrong.
type smoke struct {
	smokeTarget
	client *http.Client
	out    io.Writer
	run    string // makes this run's delivery GUIDs unique in a reused database
	found  problems
}

// runSmoke sends through nginx what GitHub, an operator and a stranger
// would, and asks each replica what it counted. It prints one line per
// expectation, "ok" or "BAD", and returns the BAD ones.
func runSmoke(ctx context.Context, t smokeTarget, out io.Writer) problems {
	s := &smoke{smokeTarget: t, client: &http.Client{Timeout: 20 * time.Second}, out: out, run: randomHex(6)}
	s.webhooks(ctx)
	s.bodySizes(ctx)
	s.adminAPI(ctx)
	s.retriedPastDeadReplica()
	s.webhookPortHidesTheRest(ctx)
	s.replicaMetrics(ctx)
	return s.found
}

// The deliveries the webhooks and body sizes send that a replica must
// count as accepted stars: twelve, the same GUID from another hook, and
// the 24 MiB one.
const acceptedStars = 14

const star = `{"action":"created","starred_at":"2026-01-01T00:00:00Z","repository":{"id":1,"name":"website","full_name":"acme/website","owner":{"login":"acme"}},"sender":{"login":"octocat","type":"User"}}`

// webhooks: ping, deliveries, a redelivery, the same GUID from another
// hook, and a bad signature.
func (s *smoke) webhooks(ctx context.Context) {
	ping := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
	s.expect("ping", s.post(ctx, ping, "ping", s.guid("ping"), "1", ""), `^200 .*pong`)
	for i := 1; i <= 12; i++ {
		s.expect(fmt.Sprintf("delivery %d", i), s.post(ctx, []byte(star), "star", s.guid(fmt.Sprint(i)), "100", ""), `^202 .*accepted`)
	}
	s.expect("redelivery (same hook, same GUID)", s.post(ctx, []byte(star), "star", s.guid("1"), "100", ""), `^202 .*duplicate`)
	s.expect("same GUID from another hook", s.post(ctx, []byte(star), "star", s.guid("1"), "200", ""), `^202 .*accepted`)
	s.expect("bad signature", s.post(ctx, []byte(star), "star", s.guid("bad"), "100", "sha256=0000"), `^401 `)
}

// bodySizes: a body just under the limit (24 MiB of GitHub's 25) passes
// nginx and hookwise; one just over it (26 MiB) is refused.
func (s *smoke) bodySizes(ctx context.Context) {
	under, over := s.bodyLimit/25*24, s.bodyLimit/25*26
	prefix := `{"action":"created","repository":{"full_name":"acme/website"},"sender":{"login":"octocat","type":"User"},"pad":"`
	var big bytes.Buffer
	big.WriteString(prefix)
	big.Write(bytes.Repeat([]byte("x"), under-len(prefix)-2))
	big.WriteString(`"}`)
	s.expect(byteSize(under)+" delivery", s.post(ctx, big.Bytes(), "star", s.guid("big"), "100", ""), `^202 .*accepted`)
	huge := bytes.Repeat([]byte(" "), over)
	s.expect(byteSize(over)+" delivery", s.post(ctx, huge, "star", s.guid("huge"), "100", "sha256=00"), `^413 `)
}

// byteSize writes n in MiB, or KiB when it is smaller.
func byteSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// adminAPI: /metrics is not public, and the admin API needs the token and
// refuses a cross-site POST even with it.
func (s *smoke) adminAPI(ctx context.Context) {
	token := "Bearer " + s.adminToken
	s.expect("GET /metrics through nginx", s.status(ctx, "GET", s.lb+"/metrics", nil), `^404$`)
	s.expect("admin API without token", s.status(ctx, "GET", s.lb+"/api/v1/stats", nil), `^401$`)
	s.expect("admin API with token", s.status(ctx, "GET", s.lb+"/api/v1/stats", http.Header{"Authorization": {token}}), `^200$`)
	s.expect("admin POST with token", s.status(ctx, "POST", s.lb+"/api/v1/dlq/retry", http.Header{"Authorization": {token}}), `^202$`)
	s.expect("cross-site admin POST with token", s.status(ctx, "POST", s.lb+"/api/v1/dlq/retry",
		http.Header{"Authorization": {token}, "Sec-Fetch-Site": {"cross-site"}}), `^403$`)
}

// retriedPastDeadReplica: nginx logs every upstream it tried, so "dead,
// live" is a request it retried on another replica.
func (s *smoke) retriedPastDeadReplica() {
	b, err := os.ReadFile(s.accessLog)
	if err != nil {
		s.fail("a request retried past the dead replica", err)
		return
	}
	n := strings.Count(string(b), "upstream="+s.dead+", ")
	s.expect("a request retried past the dead replica", fmt.Sprint(n), `^[1-9]`)
}

// webhookPortHidesTheRest: a replica's webhook port gives a stranger
// nothing that reaches the database: /readyz, /metrics and the admin API
// are on the internal port.
func (s *smoke) webhookPortHidesTheRest(ctx context.Context) {
	for _, path := range []string{"/readyz", "/metrics", "/api/v1/stats"} {
		s.expect("GET "+path+" on a replica's webhook port", s.status(ctx, "GET", s.replica+path, nil), `^404$`)
	}
	s.expect("GET /healthz on a replica's webhook port", s.status(ctx, "GET", s.replica+"/healthz", nil), `^200$`)
}

// replicaMetrics reads every replica's /metrics (saved for promtool's lint)
// and checks that together they counted every accepted delivery.
func (s *smoke) replicaMetrics(ctx context.Context) {
	var sum float64
	for i, base := range s.internal {
		body, err := s.get(ctx, base+"/metrics")
		if err != nil {
			s.fail("GET "+base+"/metrics", err)
			continue
		}
		if s.metricsOut != "" {
			if err := os.WriteFile(filepath.Join(s.metricsOut, fmt.Sprintf("metrics-%d.txt", i+1)), body, 0o644); err != nil {
				s.fail("save "+base+"/metrics", err)
			}
		}
		n, err := countedStars(body)
		if err != nil {
			s.fail("parse "+base+"/metrics", err)
			continue
		}
		sum += n
	}
	s.expect("accepted deliveries counted", fmt.Sprint(sum), fmt.Sprintf("^%d$", acceptedStars))
}

// countedStars sums hookwise_webhook_deliveries_total{event="star",
// outcome="accepted"} in one replica's /metrics.
func countedStars(body []byte) (float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, m := range families["hookwise_webhook_deliveries_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["event"] == "star" && labels["outcome"] == "accepted" {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}

// expect prints whether got matches the regular expression want, and
// keeps a mismatch as a problem.
func (s *smoke) expect(what, got, want string) {
	if regexp.MustCompile(want).MatchString(got) {
		fmt.Fprintf(s.out, "ok   %s: %s\n", what, got)
		return
	}
	fmt.Fprintf(s.out, "BAD  %s: got %s, want %s\n", what, got, want)
	s.found.add("smoke: %s: got %s, want %s", what, got, want)
}

// fail prints and keeps a step that could not be checked at all.
func (s *smoke) fail(what string, err error) {
	fmt.Fprintf(s.out, "BAD  %s: %v\n", what, err)
	s.found.add("smoke: %s: %v", what, err)
}

// post sends a webhook delivery through nginx, signed with the secret
// unless sig is given, and returns "STATUS BODY" (the body's start).
func (s *smoke) post(ctx context.Context, body []byte, event, guid, hookID, sig string) string {
	if sig == "" {
		mac := hmac.New(sha256.New, []byte(s.secret))
		mac.Write(body)
		sig = "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	req, err := http.NewRequestWithContext(ctx, "POST", s.lb+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", guid)
	req.Header.Set("X-GitHub-Hook-ID", hookID)
	req.Header.Set("X-Hub-Signature-256", sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return "no answer: " + err.Error()
	}
	defer resp.Body.Close()
	start, _ := io.ReadAll(io.LimitReader(resp.Body, 120))
	return fmt.Sprintf("%d %s", resp.StatusCode, strings.Join(strings.Fields(string(start)), " "))
}

// status makes a request without a body and returns its status code.
func (s *smoke) status(ctx context.Context, method, url string, h http.Header) string {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err.Error()
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "no answer: " + err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Sprint(resp.StatusCode)
}

// get returns the body of a 200 answer.
func (s *smoke) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %d, want 200", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

func (s *smoke) guid(what string) string { return "smoke-" + s.run + "-" + what }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
