package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/webhook"
)

func runLoadtestCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runLoadtest(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), err
}

func TestLoadtestFlags(t *testing.T) {
	out, _, err := runLoadtestCmd(t, nil, "-h")
	if err != nil || !strings.Contains(out, "usage: hookwise loadtest") || !strings.Contains(out, "-concurrency") {
		t.Errorf("loadtest -h = %v, output %q; want the usage on stdout", err, out)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--bogus"}, nil, "flag provided but not defined: -bogus"},
		{[]string{"--requests", "1"}, map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, "--url is required"},
		{[]string{"--url", "http://127.0.0.1:1/webhook", "--requests", "1"}, nil, "--secret or GITHUB_WEBHOOK_SECRET"},
		{[]string{"--url", "http://127.0.0.1:1/webhook"}, map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, "--duration, --requests"},
		{[]string{"--url", "http://127.0.0.1:1/webhook", "--requests", "1", "extra"}, map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, `unexpected argument "extra"`},
		{[]string{"--url", "http://127.0.0.1:1/webhook", "--duration", "x"}, nil, "invalid value"},
	} {
		_, _, err := runLoadtestCmd(t, tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadtest %v = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// A run against a receiver: the report shows what the receiver answered,
// the secret from the environment signs the deliveries and is printed
// nowhere, and answers other than 2xx make the command fail.
func TestLoadtestReportsAndFails(t *testing.T) {
	const secret = "env-secret-value"
	var status = http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify([][]byte{[]byte(secret)}, body, r.Header.Get("X-Hub-Signature-256")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	env := map[string]string{"GITHUB_WEBHOOK_SECRET": secret + ",older-secret"}

	out, errOut, err := runLoadtestCmd(t, env, "--url", srv.URL, "--requests", "50", "--concurrency", "4")
	if err != nil {
		t.Fatalf("loadtest against a 202 receiver: %v\n%s", err, errOut)
	}
	for _, want := range []string{"50 requests", "req/s", "p50", "p99", "max", "202  50", "≤ "} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	status = http.StatusInternalServerError
	out, errOut, err = runLoadtestCmd(t, env, "--url", srv.URL, "--requests", "20", "--json")
	if err == nil || !strings.Contains(err.Error(), "20 of 20 requests were not answered 2xx") {
		t.Errorf("loadtest against a 500 receiver = %v, want it to fail", err)
	}
	if !strings.Contains(out, `"500": 20`) {
		t.Errorf("JSON report lacks the 500s:\n%s", out)
	}
	for _, text := range []string{out, errOut, err.Error()} {
		if strings.Contains(text, "env-secret") || strings.Contains(text, "older-secret") {
			t.Errorf("the secret appears in the output: %q", text)
		}
	}
}
