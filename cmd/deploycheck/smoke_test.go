package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// faults are the ways the fake deployment can go wrong.
type faults struct {
	acceptBadSignature      bool
	noDeduplication         bool
	bodyLimit               int64 // bytes; 0 is the target's
	publicMetrics           bool
	adminWithoutToken       bool
	crossSiteAdmin          bool
	webhookPortServesReadyz bool
	countsNothing           bool
	noRetry                 bool
}

// fakeDeployment speaks what nginx.conf in front of hookwise answers, on
// three servers: the load balancer, a replica's webhook port and its
// internal port. It is the smoke test's stand-in, not hookwise: it keeps
// only what the answers depend on.
type fakeDeployment struct {
	secret, token string
	bodyLimit     int64
	faults
	mu       sync.Mutex
	seen     map[string]bool // hook/GUID
	accepted int             // star deliveries accepted
}

func (f *fakeDeployment) loadBalancer() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", f.webhook)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if !f.publicMetrics {
			http.NotFound(w, r)
		}
	})
	mux.HandleFunc("GET /api/v1/stats", func(w http.ResponseWriter, r *http.Request) {
		if f.admin(w, r) {
			fmt.Fprint(w, `{"deliveries":14}`)
		}
	})
	mux.HandleFunc("POST /api/v1/dlq/retry", func(w http.ResponseWriter, r *http.Request) {
		if !f.admin(w, r) {
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" && !f.crossSiteAdmin {
			http.Error(w, "cross-site", http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	return mux
}

func (f *fakeDeployment) admin(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+f.token && !f.adminWithoutToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

func (f *fakeDeployment) webhook(w http.ResponseWriter, r *http.Request) {
	limit := f.faults.bodyLimit
	if limit == 0 {
		limit = f.bodyLimit
	}
	// As nginx does: refuse by the declared length, before reading.
	if r.ContentLength > limit {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	mac := hmac.New(sha256.New, []byte(f.secret))
	mac.Write(body)
	if r.Header.Get("X-Hub-Signature-256") != "sha256="+hex.EncodeToString(mac.Sum(nil)) && !f.acceptBadSignature {
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	if r.Header.Get("X-GitHub-Event") == "ping" {
		fmt.Fprint(w, `{"status":"pong"}`)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Header.Get("X-GitHub-Hook-ID") + "/" + r.Header.Get("X-GitHub-Delivery")
	w.WriteHeader(http.StatusAccepted)
	if f.seen[key] && !f.noDeduplication {
		fmt.Fprint(w, `{"status":"duplicate"}`)
		return
	}
	f.seen[key] = true
	f.accepted++
	fmt.Fprint(w, `{"status":"accepted"}`)
}

func (f *fakeDeployment) webhookPort() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || (r.URL.Path == "/readyz" && f.webhookPortServesReadyz) {
			fmt.Fprint(w, "ok")
			return
		}
		http.NotFound(w, r)
	})
}

func (f *fakeDeployment) internalPort() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		f.mu.Lock()
		n := f.accepted
		f.mu.Unlock()
		if f.countsNothing {
			n = 0
		}
		fmt.Fprintf(w, "# HELP hookwise_webhook_deliveries_total Webhook requests.\n# TYPE hookwise_webhook_deliveries_total counter\n"+
			"hookwise_webhook_deliveries_total{event=\"ping\",outcome=\"pong\"} 1\n"+
			"hookwise_webhook_deliveries_total{event=\"star\",outcome=\"accepted\"} %d\n", n)
	})
}

// The fake's body limit: GitHub's 25 MiB scaled down to 25 KiB, so that
// the tests move kilobytes, not megabytes.
const fakeBodyLimit = 25 << 10

// startFake starts the fake deployment and returns the smoke test's target.
func startFake(t *testing.T, fl faults) smokeTarget {
	t.Helper()
	f := &fakeDeployment{secret: "smoke-secret", token: "smoke-token", bodyLimit: fakeBodyLimit, faults: fl, seen: map[string]bool{}}
	lb, replica, internal := httptest.NewServer(f.loadBalancer()), httptest.NewServer(f.webhookPort()), httptest.NewServer(f.internalPort())
	t.Cleanup(lb.Close)
	t.Cleanup(replica.Close)
	t.Cleanup(internal.Close)
	dir := t.TempDir()
	// nginx's log line for a request it sent to the dead replica first.
	tried := "upstream=127.0.0.1:9, 127.0.0.1:10 upstream_status=502, 202"
	if fl.noRetry {
		tried = "upstream=127.0.0.1:10 upstream_status=202"
	}
	writeFile(t, filepath.Join(dir, "access.log"), `127.0.0.1 "POST /webhook HTTP/1.1" 202 `+tried+"\n")
	return smokeTarget{
		lb: lb.URL, replica: replica.URL, internal: []string{internal.URL}, dead: "127.0.0.1:9",
		accessLog: filepath.Join(dir, "access.log"), metricsOut: dir, bodyLimit: fakeBodyLimit, secret: f.secret, adminToken: f.token,
	}
}

func TestSmokePassesAWorkingDeployment(t *testing.T) {
	target := startFake(t, faults{})
	var out bytes.Buffer
	wantNoProblems(t, runSmoke(context.Background(), target, &out))
	if strings.Contains(out.String(), "BAD") || !strings.Contains(out.String(), "ok   accepted deliveries counted: 14") {
		t.Errorf("output:\n%s\nwant every line ok, 14 deliveries counted", &out)
	}
	saved, err := os.ReadFile(filepath.Join(target.metricsOut, "metrics-1.txt"))
	if err != nil || !strings.Contains(string(saved), `hookwise_webhook_deliveries_total{event="star",outcome="accepted"} 14`) {
		t.Errorf("saved /metrics = %q, %v; want the replica's metrics, for promtool", saved, err)
	}
	if strings.Contains(out.String(), target.secret) || strings.Contains(out.String(), target.adminToken) {
		t.Errorf("output shows the secret or the admin token:\n%s", &out)
	}
}

func TestSmokeFindsABrokenDeployment(t *testing.T) {
	tests := []struct {
		name string
		faults
		want string
	}{
		{"a forged signature accepted", faults{acceptBadSignature: true}, "smoke: bad signature: got 202"},
		{"a redelivery processed twice", faults{noDeduplication: true}, "smoke: redelivery (same hook, same GUID): got 202 {\"status\":\"accepted\"}, want ^202 .*duplicate"},
		{"a body limit below GitHub's", faults{bodyLimit: 1 << 10}, "smoke: 24 KiB delivery: got 413"},
		{"no body limit", faults{bodyLimit: 1 << 30}, "smoke: 26 KiB delivery: got 401"},
		{"/metrics public", faults{publicMetrics: true}, "smoke: GET /metrics through nginx: got 200, want ^404$"},
		{"the admin API open", faults{adminWithoutToken: true}, "smoke: admin API without token: got 200, want ^401$"},
		{"a cross-site POST taken", faults{crossSiteAdmin: true}, "smoke: cross-site admin POST with token: got 202, want ^403$"},
		{"/readyz on the webhook's port", faults{webhookPortServesReadyz: true}, "smoke: GET /readyz on a replica's webhook port: got 200, want ^404$"},
		{"deliveries not counted", faults{countsNothing: true}, "smoke: accepted deliveries counted: got 0, want ^14$"},
		{"no retry past the dead replica", faults{noRetry: true}, "smoke: a request retried past the dead replica: got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			found := runSmoke(context.Background(), startFake(t, tt.faults), &out)
			wantProblem(t, found, tt.want)
			if !strings.Contains(out.String(), "BAD  ") {
				t.Errorf("output:\n%s\nwant a BAD line", &out)
			}
		})
	}
}

func TestSmokeWithNothingListening(t *testing.T) {
	target := startFake(t, faults{})
	target.lb, target.internal = "http://127.0.0.1:1", []string{"http://127.0.0.1:1"}
	found := runSmoke(context.Background(), target, io.Discard)
	wantProblem(t, found, "smoke: ping: got no answer: ")
	wantProblem(t, found, "smoke: GET http://127.0.0.1:1/metrics: ")
}

func TestSmokeNeedsTheSecretsFromTheEnvironment(t *testing.T) {
	t.Setenv("GITHUB_WEBHOOK_SECRET", "")
	t.Setenv("HOOKWISE_ADMIN_TOKEN", "x")
	_, err := smokeCommand(context.Background(), []string{"-lb", "http://a", "-replica", "http://b", "-internal", "http://c",
		"-dead", "d:1", "-access-log", "e"}, io.Discard)
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "GITHUB_WEBHOOK_SECRET") {
		t.Errorf("smoke without GITHUB_WEBHOOK_SECRET: err = %v, want a usage error naming it", err)
	}
}
