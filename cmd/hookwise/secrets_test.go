package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/logtest"
	"github.com/hookwise/hookwise/internal/store"
)

// Every secret value the tests configure contains this, so that one check
// finds any of them.
const secretMark = "S3CRET"

// A PEM-shaped key whose body is the secret.
const secretKey = "-----BEGIN RSA PRIVATE KEY-----\nS3CRETPEMBODYKEY\n-----END RSA PRIVATE KEY-----\n"

// secretEnv is an environment where every credential hookwise takes is a
// distinctive secret, with the database URL given.
func secretEnv(databaseURL string) map[string]string {
	return map[string]string{
		"HOOKWISE_CONFIG":        "",
		"HOOKWISE_DATABASE_URL":  databaseURL,
		"GITHUB_WEBHOOK_SECRET":  "S3CRET-WEBHOOK-ONE,S3CRET-WEBHOOK-TWO",
		"GITHUB_TOKEN":           "S3CRET-GITHUB-TOKEN",
		"ANTHROPIC_API_KEY":      "S3CRET-ANTHROPIC-KEY",
		"HOOKWISE_ADMIN_TOKEN":   "S3CRET-ADMIN-TOKEN",
		"HOOKWISE_ALERT_WEBHOOK": "https://hooks.example.com/services/S3CRET-ALERT-PATH",
		"GITHUB_API_URL":         "https://proxy:S3CRET-API-PASSWORD@127.0.0.1:1/",
	}
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// noSecret fails the test if any of the outputs shows a secret.
func noSecret(t *testing.T, what string, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		if i := strings.Index(out, secretMark); i >= 0 {
			t.Errorf("%s shows a secret: …%s…", what, out[max(0, i-60):min(len(out), i+40)])
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckConfigHidesEverySecret(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    []string // in the output
		wantErr string   // "" when it can serve
	}{
		{name: "token mode, password in the URL",
			env:  secretEnv("postgres://hookwise:S3CRET-PG-PASSWORD@db.internal:5432/hookwise?sslmode=require"),
			want: []string{"database_url: postgres://hookwise:[redacted]@db.internal:5432/hookwise?sslmode=require", "token: '[redacted]'"}},
		{name: "password as a query parameter",
			env:  secretEnv("postgres://hookwise@db.internal/hookwise?password=S3CRET-PG-PASSWORD&sslpassword=S3CRET-SSL"),
			want: []string{"database_url: postgres://hookwise@db.internal/hookwise?password=[redacted]&sslpassword=[redacted]"}},
		{name: "percent-encoded password",
			env:  secretEnv("postgres://hookwise:S3CRET%40PG%3Apass@db.internal/hookwise"),
			want: []string{"database_url: postgres://hookwise:[redacted]@db.internal/hookwise"}},
		{name: "App mode", env: func() map[string]string {
			env := secretEnv("postgres://hookwise:S3CRET-PG-PASSWORD@db.internal/hookwise")
			env["GITHUB_TOKEN"], env["GITHUB_APP_ID"], env["GITHUB_APP_PRIVATE_KEY"] = "", "42", secretKey
			env["GITHUB_ALLOWED_OWNERS"] = "acme"
			return env
		}(), want: []string{"app_private_key: '[redacted]'", "allowed_owners:\n    - acme"}},
		{name: "not ready to serve", env: func() map[string]string {
			env := secretEnv("postgres://hookwise:S3CRET-PG-PASSWORD@db.internal/hookwise")
			env["GITHUB_APP_ID"], env["GITHUB_APP_PRIVATE_KEY"] = "42", secretKey
			return env
		}(), wantErr: "github: set either GITHUB_TOKEN or GITHUB_APP_ID, not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			var out, errOut logtest.Buffer
			err := run([]string{"check-config"}, &out, &errOut)
			if !strings.Contains(errText(err), tt.wantErr) || (tt.wantErr == "") != (err == nil) {
				t.Errorf("check-config = %v, want %q", err, tt.wantErr)
			}
			noSecret(t, "check-config", out.String(), errOut.String(), errText(err))
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("check-config lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// serve refuses to start on a database it cannot use, saying why, and
// neither its log nor its error shows the database password or any other
// secret.
func TestServeBadDatabaseHidesSecrets(t *testing.T) {
	tests := []struct {
		name, url string
		wantErr   string
		pg        bool // needs the test PostgreSQL server
	}{
		{name: "nothing listening", url: "postgres://hookwise:S3CRET-PG-PASSWORD@127.0.0.1:1/hookwise?sslmode=disable",
			wantErr: "open database: failed to connect to `user=hookwise database=hookwise`"},
		{name: "password as a query parameter", url: "postgres://hookwise@127.0.0.1:1/hookwise?sslmode=disable&password=S3CRET-PG-PASSWORD",
			wantErr: "open database: failed to connect"},
		{name: "bad option", url: "postgres://hookwise:S3CRET-PG-PASSWORD@127.0.0.1:1/hookwise?sslmode=bogus",
			wantErr: "open database: cannot parse `postgres://hookwise:"},
		{name: "bad port", url: "postgres://hookwise:S3CRET-PG-PASSWORD@127.0.0.1:S3CRET/hookwise",
			wantErr: "database_url: not a valid PostgreSQL URL"},
		{name: "no such database", url: "postgres://postgres:S3CRET-PG-PASSWORD@127.0.0.1:5432/hookwise_no_such_db?sslmode=disable",
			wantErr: `database "hookwise_no_such_db" does not exist`, pg: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pg && os.Getenv("HOOKWISE_TEST_DATABASE_URL") == "" {
				t.Skip("HOOKWISE_TEST_DATABASE_URL is not set")
			}
			setEnv(t, secretEnv(tt.url))
			t.Setenv("HOOKWISE_LISTEN", "127.0.0.1:0")
			var out, logs logtest.Buffer
			err := run([]string{"serve"}, &out, &logs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("serve = %v, want an error containing %q", err, tt.wantErr)
			}
			noSecret(t, "serve", out.String(), logs.String(), errText(err))
			if strings.HasPrefix(tt.wantErr, "open database") && !strings.Contains(logs.String(), `"database":"postgres://`) {
				t.Errorf("start-up log lacks the database it opens:\n%s", logs.String())
			}
		})
	}
	t.Run("App without allowlist", func(t *testing.T) {
		env := secretEnv(filepath.Join(t.TempDir(), "db"))
		env["GITHUB_TOKEN"], env["GITHUB_APP_ID"], env["GITHUB_APP_PRIVATE_KEY"] = "", "42", secretKey
		setEnv(t, env)
		var out, logs logtest.Buffer
		err := run([]string{"serve"}, &out, &logs)
		if err == nil || !strings.Contains(err.Error(), "github.allowed_owners: GITHUB_APP_ID is set") {
			t.Errorf("serve in App mode without an allowlist = %v, want an error naming github.allowed_owners", err)
		}
		noSecret(t, "serve", out.String(), logs.String(), errText(err))
	})
}

// Log lines pass every message, string and error through the redactor.
func TestLoggerRedacts(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.GitHub.Token = "S3CRET-GITHUB-TOKEN"
	cfg.DatabaseURL = "postgres://u:S3CRET-PG-PASSWORD@db/h"
	for _, format := range []string{"json", "text"} {
		var b strings.Builder
		log := newLogger(format, &b, cfg.Redactor())
		log.Error("token S3CRET-GITHUB-TOKEN refused", "url", cfg.DatabaseURL,
			"err", fmt.Errorf("open: %w", errors.New("auth S3CRET-PG-PASSWORD")),
			slog.Group("upstream", "authorization", "Bearer S3CRET-GITHUB-TOKEN"), "n", 3)
		noSecret(t, format+" log", b.String())
		if !strings.Contains(b.String(), "postgres://u:[redacted]@db/h") || !strings.Contains(b.String(), "3") {
			t.Errorf("%s log = %s, want the redacted URL and the other attributes", format, b.String())
		}
	}
}

// The admin API shows deliveries, their answers, dead letters with their
// upstream errors, costs and stats, and no credential at all.
func TestAPIShowsNoSecret(t *testing.T) {
	const (
		ghToken  = "S3CRET-GITHUB-TOKEN"
		modelKey = "S3CRET-ANTHROPIC-KEY"
		admin    = "S3CRET-ADMIN-TOKEN"
		hook     = "S3CRET-WEBHOOK-SECRET"
	)
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghToken}})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: modelKey})
	r := apptest.Start(t, github, model, func(c *config.Config) {
		c.GitHub.Token, c.Anthropic.APIKey, c.AdminToken = ghToken, modelKey, admin
		c.GitHub.WebhookSecrets = []config.Secret{hook}
		c.Budget.AlertWebhook = "https://hooks.example.com/services/S3CRET-ALERT-PATH"
		c.Budget.Daily = 100
	})
	send := func(guid string, number int) {
		t.Helper()
		d := fake.Delivery{Event: "issues", GUID: guid,
			Payload: fake.IssueEvent("opened", "acme/app", number, "Crash on save", "Saving a file with a long name crashes.", "bob")}
		if code, err := fake.Send(http.DefaultClient, r.Endpoint, hook, d); err != nil || code != http.StatusAccepted {
			t.Fatalf("send %s = %d, %v; want 202", guid, code, err)
		}
	}
	send("ok-1", 1)
	waitStatus(t, r.Config.DatabaseURL, "ok-1", store.StatusDone)
	github.FailNext("POST", "/repos/acme/app/issues/2/comments", 404, 1)
	send("dead-github", 2)
	waitStatus(t, r.Config.DatabaseURL, "dead-github", store.StatusFailed)
	model.SetAPIKey("rotated")
	send("dead-model", 3)
	waitStatus(t, r.Config.DatabaseURL, "dead-model", store.StatusFailed)

	base := strings.TrimSuffix(r.Endpoint, "/webhook")
	for _, path := range []string{"/api/v1/stats", "/api/v1/deliveries", "/api/v1/deliveries/ok-1", "/api/v1/deliveries/dead-github",
		"/api/v1/deliveries/dead-model", "/api/v1/dlq", "/api/v1/dlq/dead-github", "/api/v1/dlq/dead-model",
		"/api/v1/costs", "/api/v1/costs?by=repo", "/metrics", "/readyz", "/api/v1/deliveries/no-such"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
		}
		noSecret(t, "GET "+path, string(body), fmt.Sprint(resp.Header))
	}
}
