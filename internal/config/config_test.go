package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to a file in a fresh temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, yamlText string, env map[string]string) Config {
	t.Helper()
	p := ""
	if yamlText != "" {
		p = writeFile(t, "hookwise.yaml", yamlText)
	}
	c, err := Load(p, env)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", nil)
	s := c.For("octo/repo")
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"database_url", c.DatabaseURL, "./data/hookwise.db"},
		{"uses postgres", c.UsesPostgres(), false},
		{"log_format", c.LogFormat, ""},
		{"github.api_url", c.GitHub.APIURL, "https://api.github.com/"},
		{"github.writes_per_minute", c.GitHub.WritesPerMinute, 80},
		{"anthropic.model", c.Anthropic.Model, "claude-sonnet-4-5"},
		{"anthropic.max_concurrency", c.Anthropic.MaxConcurrency, 4},
		{"anthropic.max_tokens", c.Anthropic.MaxTokens, 2048},
		{"anthropic.batch_interval", c.Anthropic.BatchInterval, Duration(time.Minute)},
		{"queue.workers", c.Queue.Workers, 20},
		{"queue.max_attempts", c.Queue.MaxAttempts, 10},
		{"queue.job_timeout", c.Queue.JobTimeout, Duration(2 * time.Minute)},
		{"queue.rescue_after", c.Queue.RescueAfter, Duration(5 * time.Minute)},
		{"shutdown_timeout", c.ShutdownTimeout, Duration(30 * time.Second)},
		{"prompts_dir", c.PromptsDir, ""},
		{"webhook", c.Webhook, WebhookConfig{ClientBodyShare: 0.0625, ClientMaxUnverified: 32, PenaltyFailures: 5,
			PenaltyWindow: Duration(time.Minute), PenaltyDuration: Duration(5 * time.Minute), HookRangesRefresh: Duration(time.Hour)}},
		{"budget.daily", c.Budget.Daily, 5.0},
		{"budget.monthly", c.Budget.Monthly, 0.0},
		{"settings", s, Settings{
			Events: []string{
				"issues.opened", "issues.edited", "pull_request.opened", "pull_request.synchronize",
				"pull_request.ready_for_review", "pull_request.review_requested", "workflow_run.completed",
			},
			PostComments:    true,
			ApplyLabels:     true,
			Model:           "claude-sonnet-4-5",
			QuietPeriod:     30 * time.Second,
			MaxAnalyses:     3,
			MaxPerAuthor:    10,
			AuthorExempt:    []string{"OWNER", "MEMBER", "COLLABORATOR"},
			MinContentChars: 15,
			MinChangeChars:  40,
		}},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("default %s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil", err)
	}
}

const sampleYAML = `
listen: ":9000"
database_url: postgres://hookwise@db:5432/hookwise
log_format: json
github:
  webhook_secrets: [file-secret]
  api_url: https://ghe.example.com/api/v3
  writes_per_minute: 40
  bot_logins: [renovate-bot]
anthropic:
  model: claude-haiku-4-5
queue:
  workers: 5
  job_timeout: 90s
  rescue_after: 10m
defaults:
  label_allowlist: [bug, enhancement]
repositories:
  - match: octo/special
    post_comments: false
shutdown_timeout: 1m
`

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"HOOKWISE_LISTEN":       ":9100",
		"GITHUB_WEBHOOK_SECRET": " new-secret , ,old-secret,",
		"ANTHROPIC_MODEL":       "",  // empty counts as unset
		"HOOKWISE_WORKERS":      "7", // beats queue.workers: 5
		"GITHUB_API_URL":        "",
		"UNRELATED":             "x",
	}
	c := mustLoad(t, sampleYAML, env)
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen (env over file)", c.Listen, ":9100"},
		{"database_url (file)", c.DatabaseURL, "postgres://hookwise@db:5432/hookwise"},
		{"uses postgres", c.UsesPostgres(), true},
		{"log_format (file)", c.LogFormat, "json"},
		{"webhook secrets (env, trimmed, empties dropped)", c.GitHub.WebhookSecrets, []Secret{"new-secret", "old-secret"}},
		{"api_url (file, slash added)", c.GitHub.APIURL, "https://ghe.example.com/api/v3/"},
		{"writes_per_minute (file)", c.GitHub.WritesPerMinute, 40},
		{"bot_logins (file)", c.GitHub.BotLogins, []string{"renovate-bot"}},
		{"model (file; empty env ignored)", c.Anthropic.Model, "claude-haiku-4-5"},
		{"max_tokens (default)", c.Anthropic.MaxTokens, 2048},
		{"workers (env over file)", c.Queue.Workers, 7},
		{"max_attempts (default)", c.Queue.MaxAttempts, 10},
		{"job_timeout (file)", c.Queue.JobTimeout, Duration(90 * time.Second)},
		{"rescue_after (file)", c.Queue.RescueAfter, Duration(10 * time.Minute)},
		{"shutdown_timeout (file)", c.ShutdownTimeout, Duration(time.Minute)},
		{"defaults keep built-in events", c.For("a/b").Events, defaultEvents()},
		{"defaults label_allowlist", c.For("a/b").LabelAllowlist, []string{"bug", "enhancement"}},
		{"rule post_comments", c.For("octo/special").PostComments, false},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestLoadEnvOnly(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"HOOKWISE_LISTEN":          "127.0.0.1:8181",
		"HOOKWISE_DATABASE_URL":    "/var/lib/hookwise.db",
		"HOOKWISE_ADMIN_TOKEN":     "admin-token-value",
		"HOOKWISE_LOG_FORMAT":      "text",
		"HOOKWISE_PROMPTS_DIR":     "/etc/hookwise/prompts",
		"GITHUB_TOKEN":             "ghp_token",
		"GITHUB_API_URL":           "http://127.0.0.1:9999/",
		"GITHUB_WRITES_PER_MINUTE": "30",
		"ANTHROPIC_API_KEY":        "sk-ant-key",
		"ANTHROPIC_BASE_URL":       "http://127.0.0.1:9998",
		"ANTHROPIC_MODEL":          "claude-opus-4-1",
		"HOOKWISE_WORKERS":         "3",
		"GITHUB_WEBHOOK_SECRET":    "whsec",
	}
	c := mustLoad(t, "", env)
	want := Default()
	want.Listen = "127.0.0.1:8181"
	want.DatabaseURL = "/var/lib/hookwise.db"
	want.AdminToken = "admin-token-value"
	want.LogFormat = "text"
	want.PromptsDir = "/etc/hookwise/prompts"
	want.GitHub.Token = "ghp_token"
	want.GitHub.APIURL = "http://127.0.0.1:9999/"
	want.GitHub.WritesPerMinute = 30
	want.GitHub.WebhookSecrets = []Secret{"whsec"}
	want.Anthropic.APIKey = "sk-ant-key"
	want.Anthropic.BaseURL = "http://127.0.0.1:9998"
	want.Anthropic.Model = "claude-opus-4-1"
	want.Queue.Workers = 3
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(env) =\n%s\nwant\n%s", c.Redacted(), want.Redacted())
	}
	if err := c.ValidateForServe(); err != nil {
		t.Errorf("ValidateForServe() = %v, want nil", err)
	}
}

func TestLoadPrivateKeyFile(t *testing.T) {
	t.Parallel()
	const key = "-----BEGIN RSA PRIVATE KEY-----\nTUlJQ2tleQ==\n-----END RSA PRIVATE KEY-----\n"
	keyFile := writeFile(t, "app.pem", key)

	t.Run("from env", func(t *testing.T) {
		t.Parallel()
		c := mustLoad(t, "", map[string]string{"GITHUB_APP_ID": "42", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile})
		if got := c.GitHub.AppPrivateKey.Value(); got != key {
			t.Errorf("AppPrivateKey = %q, want the file content", got)
		}
		if c.GitHub.AppID != 42 {
			t.Errorf("AppID = %d, want 42", c.GitHub.AppID)
		}
	})
	t.Run("env replaces file key", func(t *testing.T) {
		t.Parallel()
		c := mustLoad(t, "github:\n  app_private_key: from-yaml\n", map[string]string{"GITHUB_APP_PRIVATE_KEY_FILE": keyFile})
		if got := c.GitHub.AppPrivateKey.Value(); got != key {
			t.Errorf("AppPrivateKey = %q, want the file content", got)
		}
	})
	t.Run("from yaml", func(t *testing.T) {
		t.Parallel()
		c := mustLoad(t, "github:\n  app_private_key_file: "+keyFile+"\n", nil)
		if got := c.GitHub.AppPrivateKey.Value(); got != key {
			t.Errorf("AppPrivateKey = %q, want the file content", got)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	secretFile := writeFile(t, "secret.pem", "TOPSECRETKEY")
	tests := []struct {
		name   string
		yaml   string
		env    map[string]string
		want   []string // substrings of the error
		secret string   // must not appear in the error
	}{
		{
			name: "unknown top-level key",
			yaml: "listen: \":8080\"\nlisten_addr: \":9\"\n",
			want: []string{":2: listen_addr: unknown key"},
		},
		{
			name: "unknown nested key",
			yaml: "queue:\n  workers: 3\n  wrokers: 4\n",
			want: []string{":3: queue.wrokers: unknown key"},
		},
		{
			name: "unknown key in a rule",
			yaml: "repositories:\n  - match: a/b\n    post_comment: false\n",
			want: []string{":3: repositories[0].post_comment: unknown key"},
		},
		{
			name: "bad duration",
			yaml: "queue:\n  job_timeout: 5 minutes\n",
			want: []string{":2: queue.job_timeout: want a duration", `"5 minutes"`},
		},
		{
			name: "wrong type",
			yaml: "queue:\n  workers: many\n",
			want: []string{":2: queue.workers: cannot unmarshal"},
		},
		{
			name:   "secret with wrong type is not echoed",
			yaml:   "github:\n  webhook_secrets: hunter2hunter2\n",
			want:   []string{":2: github.webhook_secrets: cannot unmarshal"},
			secret: "hunter2",
		},
		{
			name: "syntax error",
			yaml: "listen: [\n",
			want: []string{"hookwise.yaml"},
		},
		{
			name: "bad env number",
			env:  map[string]string{"GITHUB_WRITES_PER_MINUTE": "abc"},
			want: []string{`GITHUB_WRITES_PER_MINUTE: want a whole number, got "abc"`},
		},
		{
			name: "bad env app id",
			env:  map[string]string{"GITHUB_APP_ID": "1.5"},
			want: []string{`GITHUB_APP_ID: want a whole number, got "1.5"`},
		},
		{
			name: "bad env installations",
			env:  map[string]string{"GITHUB_ALLOWED_INSTALLATIONS": "12, acme"},
			want: []string{`GITHUB_ALLOWED_INSTALLATIONS: want installation ids separated by commas, got "12, acme"`},
		},
		{
			name: "bad env workers is validated",
			env:  map[string]string{"HOOKWISE_WORKERS": "0"},
			want: []string{"queue.workers: must be at least 1, got 0"},
		},
		{
			name: "missing key file",
			env:  map[string]string{"GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent/app.pem"},
			want: []string{"GITHUB_APP_PRIVATE_KEY_FILE: read /nonexistent/app.pem"},
		},
		{
			name:   "key and key file",
			env:    map[string]string{"GITHUB_APP_PRIVATE_KEY": "inline-private-key", "GITHUB_APP_PRIVATE_KEY_FILE": secretFile},
			want:   []string{"GITHUB_APP_PRIVATE_KEY_FILE: set either it or GITHUB_APP_PRIVATE_KEY"},
			secret: "inline-private-key",
		},
		{
			name:   "key and key file in yaml",
			yaml:   "github:\n  app_private_key: inline-private-key\n  app_private_key_file: " + secretFile + "\n",
			want:   []string{"github.app_private_key_file: set either it or github.app_private_key"},
			secret: "inline-private-key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ""
			if tt.yaml != "" {
				p = writeFile(t, "hookwise.yaml", tt.yaml)
			}
			_, err := Load(p, tt.env)
			if err == nil {
				t.Fatalf("Load() error = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load() error = %q, want it to contain %q", err, w)
				}
			}
			for _, s := range []string{tt.secret, "TOPSECRETKEY"} {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("Load() error = %q, leaks secret %q", err, s)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"listen", func(c *Config) { c.Listen = "8080" }, `listen: want host:port (e.g. ":8080"), got "8080"`},
		{"metrics_listen", func(c *Config) { c.MetricsListen = "9090" }, `metrics_listen: want host:port (e.g. ":9090") or nothing, got "9090"`},
		{"budget scope twice", func(c *Config) {
			c.Budget.Scopes = []BudgetScope{{Match: "repo:acme/app", Daily: 1}, {Match: "repo:ACME/app", Monthly: 20}}
		}, `budget.scopes[1].match: "repo:ACME/app" is budget.scopes[0]'s already`},
		{"metrics_listen same as listen", func(c *Config) { c.MetricsListen = ":8080" }, `metrics_listen: must differ from listen (":8080")`},
		{"database_url empty", func(c *Config) { c.DatabaseURL = "" }, "database_url: must not be empty"},
		{"log_format", func(c *Config) { c.LogFormat = "xml" }, `log_format: want "json", "text" or "" (auto), got "xml"`},
		{"empty webhook secret", func(c *Config) { c.GitHub.WebhookSecrets = []Secret{"a", ""} }, "github.webhook_secrets[1]: must not be empty"},
		{"app_id", func(c *Config) { c.GitHub.AppID = -1 }, "github.app_id: must not be negative, got -1"},
		{"api_url", func(c *Config) { c.GitHub.APIURL = "api.github.com" }, `github.api_url: want an http:// or https:// URL, got "api.github.com"`},
		{"writes_per_minute", func(c *Config) { c.GitHub.WritesPerMinute = 0 }, "github.writes_per_minute: must be at least 1, got 0"},
		{"bot_logins", func(c *Config) { c.GitHub.BotLogins = []string{" "} }, "github.bot_logins[0]: must not be empty"},
		{"anthropic.base_url", func(c *Config) { c.Anthropic.BaseURL = "localhost:1" }, `anthropic.base_url: want an http:// or https:// URL`},
		{"anthropic.model", func(c *Config) { c.Anthropic.Model = "" }, "anthropic.model: must not be empty"},
		{"anthropic.max_concurrency", func(c *Config) { c.Anthropic.MaxConcurrency = 0 }, "anthropic.max_concurrency: must be at least 1, got 0"},
		{"anthropic.max_tokens", func(c *Config) { c.Anthropic.MaxTokens = -5 }, "anthropic.max_tokens: must be at least 1, got -5"},
		{"anthropic.batch_interval", func(c *Config) { c.Anthropic.BatchInterval = 0 }, "anthropic.batch_interval: must be positive, got 0s"},
		{"queue.workers", func(c *Config) { c.Queue.Workers = 0 }, "queue.workers: must be at least 1, got 0"},
		{"database_max_connections", func(c *Config) { c.DatabaseMaxConnections = 1 }, "database_max_connections: must be at least 2, got 1"},
		{"budget.daily", func(c *Config) { c.Budget.Daily = -1 }, "budget.daily: want dollars, at least 0 (0: no limit), got -1"},
		{"budget.on_limit", func(c *Config) { c.Budget.OnLimit = "panic" }, `budget.on_limit: want defer, fallback or skip, got "panic"`},
		{"budget.fallback_model", func(c *Config) { c.Budget.OnLimit, c.Budget.FallbackModel = "fallback", "" },
			"budget.fallback_model: must be set when budget.on_limit is fallback"},
		{"budget.scopes", func(c *Config) { c.Budget.Scopes = []BudgetScope{{Match: "team:core", Daily: 1}} },
			`budget.scopes[0].match: want "repo:owner/name", "org:owner" or "installation:ID", got "team:core"`},
		{"budget.scopes limit", func(c *Config) { c.Budget.Scopes = []BudgetScope{{Match: "org:acme"}} }, "budget.scopes[0]: set daily, monthly or both"},
		{"budget.alert_thresholds", func(c *Config) { c.Budget.AlertThresholds = []int{80, 0} }, "budget.alert_thresholds[1]: want a percentage from 1 to 1000, got 0"},
		{"budget.alert_webhook", func(c *Config) { c.Budget.AlertWebhook = "hooks.example/T0/secret-part" }, "budget.alert_webhook: want an http:// or https:// URL"},
		{"anthropic.prices", func(c *Config) { c.Anthropic.Prices = map[string]Price{"claude-x": {Input: 1}} }, "anthropic.prices.claude-x: input and output prices must both be set"},
		{"retention.deliveries", func(c *Config) { c.Retention.Deliveries = Duration(time.Hour) }, "retention.deliveries: must be at least 48h, got 1h0m0s"},
		{"retention.ledger", func(c *Config) { c.Retention.Ledger = Duration(24 * time.Hour) }, "retention.ledger: must be at least 768h"},
		{"quiet_period", func(c *Config) { q := Duration(2 * time.Hour); c.Defaults.QuietPeriod = &q }, "defaults.quiet_period: want from 0s to 1h, got 2h0m0s"},
		{"ignore_paths", func(c *Config) { c.Defaults.IgnorePaths = []string{"["} }, `defaults.ignore_paths[0]: want a glob like "docs/**" or "release/*", got "["`},
		{"queue.max_attempts", func(c *Config) { c.Queue.MaxAttempts = 0 }, "queue.max_attempts: must be at least 1, got 0"},
		{"queue.priorities", func(c *Config) { c.Queue.Priorities.WorkflowRun = 9 }, "queue.priorities.workflow_run: must be 1 (first) to 4 (last), got 9"},
		{"queue.drain_alert", func(c *Config) { c.Queue.DrainAlert = -1 }, "queue.drain_alert: must not be negative (0 turns the alert off), got -1ns"},
		{"queue.job_timeout", func(c *Config) { c.Queue.JobTimeout = 0 }, "queue.job_timeout: must be positive, got 0s"},
		{"queue.rescue_after", func(c *Config) { c.Queue.RescueAfter = c.Queue.JobTimeout },
			"queue.rescue_after: must be greater than queue.job_timeout (2m0s), got 2m0s"},
		{"shutdown_timeout", func(c *Config) { c.ShutdownTimeout = -1 }, "shutdown_timeout: must be positive"},
		{"defaults.events", func(c *Config) { c.Defaults.Events = []string{"issues.opened", "pull_requests.opened"} },
			`defaults.events[1]: unsupported event "pull_requests.opened"`},
		{"defaults.label_allowlist", func(c *Config) { c.Defaults.LabelAllowlist = []string{""} }, "defaults.label_allowlist[0]: must not be empty"},
		{"defaults.max_analyses_per_author", func(c *Config) { c.Defaults.MaxAnalysesPerAuthor = ptr(-1) },
			"defaults.max_analyses_per_author: must be at least 0, got -1"},
		{"defaults.author_limit_exempt", func(c *Config) { c.Defaults.AuthorLimitExempt = []string{"OWNER", "member"} },
			`defaults.author_limit_exempt[1]: want one of OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, FIRST_TIMER, MANNEQUIN, NONE, got "member"`},
		{"bad glob", func(c *Config) {
			c.Repositories = []RepoRule{{Match: "a/b"}, {Match: "a/*"}, {Match: "["}}
		}, `repositories[2].match: bad glob "[": syntax error in pattern`},
		{"match without owner", func(c *Config) { c.Repositories = []RepoRule{{Match: "repo"}} },
			`repositories[0].match: want "owner/name" or a glob like "owner/*", got "repo"`},
		{"empty match", func(c *Config) { c.Repositories = []RepoRule{{Match: ""}} }, "repositories[0].match: must not be empty"},
		{"rule events", func(c *Config) {
			c.Repositories = []RepoRule{{Match: "a/b", RepoSettings: RepoSettings{Events: []string{"push"}}}}
		}, `repositories[0].events[0]: unsupported event "push"`},
		{"defaults.batch_events", func(c *Config) { c.Defaults.BatchEvents = []string{"workflow_run.requested"} },
			`defaults.batch_events[0]: unsupported event "workflow_run.requested"`},
		{"allowed_owners repository", func(c *Config) { c.GitHub.AllowedOwners = []string{"acme", "acme/app"} },
			`github.allowed_owners[1]: want an account login such as "acme", not a repository, got "acme/app"`},
		{"allowed_owners empty", func(c *Config) { c.GitHub.AllowedOwners = []string{""} },
			`github.allowed_owners[0]: want an account login such as "acme", or "*", got ""`},
		{"allowed_owners hostile", func(c *Config) { c.GitHub.AllowedOwners = []string{"acme\nevil"} },
			`github.allowed_owners[0]: want an account login such as "acme", or "*", got "acme\nevil"`},
		{"allowed_owners star and more", func(c *Config) { c.GitHub.AllowedOwners = []string{"*", "acme"} },
			`github.allowed_owners[0]: "*" serves every owner: list it alone`},
		{"allowed_installations", func(c *Config) { c.GitHub.AllowedInstallations = []int64{5, 0} },
			"github.allowed_installations[1]: want an installation id above 0, got 0"},
		{"github.api_url with a password", func(c *Config) { c.GitHub.APIURL = "ftp://proxy:S3CRET-API-PW@ghe/" },
			`github.api_url: want an http:// or https:// URL, got "ftp://proxy:[redacted]@ghe/"`},
		{"rule batch_events", func(c *Config) {
			c.Repositories = []RepoRule{{Match: "a/b", RepoSettings: RepoSettings{BatchEvents: []string{"issues", "star"}}}}
		}, `repositories[0].batch_events[1]: unsupported event "star"`},
		{"webhook.allow_sources", func(c *Config) { c.Webhook.AllowSources = []string{"github", "10.0.0.0/33"} },
			`webhook.allow_sources[1]: want a CIDR like "192.30.252.0/22", an address, or "github", got "10.0.0.0/33"`},
		{"webhook.trusted_proxies", func(c *Config) { c.Webhook.TrustedProxies = []string{"github"} },
			`webhook.trusted_proxies[0]: want a CIDR like "192.30.252.0/22" or an address, got "github"`},
		{"webhook.client_body_share", func(c *Config) { c.Webhook.ClientBodyShare = 1.5 },
			"webhook.client_body_share: want a fraction above 0 and at most 1 (1: no share), got 1.5"},
		{"webhook.client_body_share zero", func(c *Config) { c.Webhook.ClientBodyShare = 0 }, "webhook.client_body_share: want a fraction"},
		{"webhook.client_max_unverified", func(c *Config) { c.Webhook.ClientMaxUnverified = 0 }, "webhook.client_max_unverified: must be at least 1, got 0"},
		{"webhook.penalty_failures", func(c *Config) { c.Webhook.PenaltyFailures = -1 }, "webhook.penalty_failures: must not be negative"},
		{"webhook.penalty_window", func(c *Config) { c.Webhook.PenaltyWindow = 0 }, "webhook.penalty_window: must be positive, got 0s"},
		{"webhook.penalty_duration", func(c *Config) { c.Webhook.PenaltyDuration = -1 }, "webhook.penalty_duration: must be positive"},
		{"webhook.hook_ranges_refresh", func(c *Config) { c.Webhook.HookRangesRefresh = Duration(time.Second) },
			"webhook.hook_ranges_refresh: must be at least 1m, got 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.modify(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateCollectsAllProblems(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Queue.Workers = 0
	c.LogFormat = "xml"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want two problems")
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != 2 {
		t.Errorf("Validate() reported %d problems, want 2: %v", got, err)
	}
}

func TestValidateForServe(t *testing.T) {
	t.Parallel()
	const pemKey = "-----BEGIN RSA PRIVATE KEY-----\nTUlJQ2tleQ==\n-----END RSA PRIVATE KEY-----\n"
	ok := func(c *Config) {
		c.GitHub.WebhookSecrets = []Secret{"whsec"}
		c.GitHub.Token = "ghp_x"
		c.Anthropic.APIKey = "sk-ant"
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"token", ok, ""},
		{"app", func(c *Config) {
			ok(c)
			c.GitHub.Token, c.GitHub.AppID, c.GitHub.AppPrivateKey = "", 7, pemKey
			c.GitHub.AllowedOwners = []string{"acme"}
		}, ""},
		{"app serving every installation", func(c *Config) {
			ok(c)
			c.GitHub.Token, c.GitHub.AppID, c.GitHub.AppPrivateKey = "", 7, pemKey
			c.GitHub.AllowedOwners = []string{"*"}
		}, ""},
		{"app serving installations by id", func(c *Config) {
			ok(c)
			c.GitHub.Token, c.GitHub.AppID, c.GitHub.AppPrivateKey = "", 7, pemKey
			c.GitHub.AllowedInstallations = []int64{12345}
		}, ""},
		{"app without allowlist", func(c *Config) {
			ok(c)
			c.GitHub.Token, c.GitHub.AppID, c.GitHub.AppPrivateKey = "", 7, pemKey
		}, `github.allowed_owners: GITHUB_APP_ID is set, and anyone who installs the App would be served`},
		{"token with owners", func(c *Config) { ok(c); c.GitHub.AllowedOwners = []string{"acme"} }, ""},
		{"token with installations", func(c *Config) { ok(c); c.GitHub.AllowedInstallations = []int64{1} },
			"github.allowed_installations: installations belong to a GitHub App"},
		{"no webhook secret", func(c *Config) { ok(c); c.GitHub.WebhookSecrets = nil }, "github.webhook_secrets: set GITHUB_WEBHOOK_SECRET"},
		{"no github auth", func(c *Config) { ok(c); c.GitHub.Token = "" }, "github: set GITHUB_TOKEN or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY"},
		{"both auth modes", func(c *Config) { ok(c); c.GitHub.AppID = 7 }, "github: set either GITHUB_TOKEN or GITHUB_APP_ID, not both"},
		{"app without key", func(c *Config) { ok(c); c.GitHub.Token, c.GitHub.AppID = "", 7 }, "github.app_private_key: GITHUB_APP_ID is set"},
		{"key without app", func(c *Config) { ok(c); c.GitHub.AppPrivateKey = pemKey }, "github.app_id: GITHUB_APP_PRIVATE_KEY is set"},
		{"key not PEM", func(c *Config) {
			ok(c)
			c.GitHub.Token, c.GitHub.AppID, c.GitHub.AppPrivateKey = "", 7, "not-a-pem-secret"
		}, "github.app_private_key: not a PEM-encoded private key"},
		{"no anthropic key", func(c *Config) { ok(c); c.Anthropic.APIKey = "" }, "anthropic.api_key: set ANTHROPIC_API_KEY"},
		{"includes Validate", func(c *Config) { ok(c); c.Queue.Workers = 0 }, "queue.workers: must be at least 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.modify(&c)
			err := c.ValidateForServe()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ValidateForServe() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ValidateForServe() = %v, want an error containing %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "not-a-pem-secret") {
				t.Errorf("ValidateForServe() = %q, leaks the key", err)
			}
		})
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default().Validate() = %v, want nil (demo runs without credentials)", err)
	}
}

func TestFor(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, `
anthropic:
  model: base-model
defaults:
  apply_labels: true
  auto_close_invalid: true
  label_allowlist: [bug]
  batch_events: [workflow_run.completed]
repositories:
  - match: octo/quiet
    post_comments: false
    auto_close_invalid: false
    events: [issues]
    batch_events: [issues.edited, pull_request]
  - match: octo/*
    model: rule-model
    label_allowlist: []
    batch_events: []
    max_analyses_per_author: 0
    author_limit_exempt: []
  - match: octo/quiet-two
    post_comments: false   # never reached: octo/* matched first
`, nil)
	tests := []struct {
		repo string
		want Settings
	}{
		{"other/repo", Settings{
			Events: defaultEvents(), BatchEvents: []string{"workflow_run.completed"}, PostComments: true, ApplyLabels: true,
			LabelAllowlist: []string{"bug"}, AutoCloseInvalid: true, Model: "base-model", QuietPeriod: 30 * time.Second, MaxAnalyses: 3, MinContentChars: 15, MinChangeChars: 40,
			MaxPerAuthor: 10, AuthorExempt: []string{"OWNER", "MEMBER", "COLLABORATOR"},
		}},
		{"octo/quiet", Settings{
			Events: []string{"issues"}, BatchEvents: []string{"issues.edited", "pull_request"}, PostComments: false, ApplyLabels: true,
			LabelAllowlist: []string{"bug"}, AutoCloseInvalid: false, Model: "base-model", QuietPeriod: 30 * time.Second, MaxAnalyses: 3, MinContentChars: 15, MinChangeChars: 40,
			MaxPerAuthor: 10, AuthorExempt: []string{"OWNER", "MEMBER", "COLLABORATOR"},
		}},
		{"Octo/Quiet", Settings{ // GitHub names are case-insensitive
			Events: []string{"issues"}, BatchEvents: []string{"issues.edited", "pull_request"}, PostComments: false, ApplyLabels: true,
			LabelAllowlist: []string{"bug"}, AutoCloseInvalid: false, Model: "base-model", QuietPeriod: 30 * time.Second, MaxAnalyses: 3, MinContentChars: 15, MinChangeChars: 40,
			MaxPerAuthor: 10, AuthorExempt: []string{"OWNER", "MEMBER", "COLLABORATOR"},
		}},
		{"octo/quiet-two", Settings{ // an empty list turns off what defaults set
			Events: defaultEvents(), BatchEvents: []string{}, PostComments: true, ApplyLabels: true,
			LabelAllowlist: []string{}, AutoCloseInvalid: true, Model: "rule-model", QuietPeriod: 30 * time.Second, MaxAnalyses: 3, MinContentChars: 15, MinChangeChars: 40,
			MaxPerAuthor: 0, AuthorExempt: []string{},
		}},
		{"octo/sub/repo", Settings{ // "*" does not cross "/"
			Events: defaultEvents(), BatchEvents: []string{"workflow_run.completed"}, PostComments: true, ApplyLabels: true,
			LabelAllowlist: []string{"bug"}, AutoCloseInvalid: true, Model: "base-model", QuietPeriod: 30 * time.Second, MaxAnalyses: 3, MinContentChars: 15, MinChangeChars: 40,
			MaxPerAuthor: 10, AuthorExempt: []string{"OWNER", "MEMBER", "COLLABORATOR"},
		}},
	}
	for _, tt := range tests {
		if got := c.For(tt.repo); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("For(%q) = %+v, want %+v", tt.repo, got, tt.want)
		}
	}
}

func TestForDoesNotAlias(t *testing.T) {
	t.Parallel()
	c := Default()
	s := c.For("a/b")
	s.Events[0] = "changed"
	if got := c.For("a/b").Events[0]; got == "changed" {
		t.Errorf("For() shares its Events slice with the Config")
	}
}

func TestBatched(t *testing.T) {
	t.Parallel()
	s := Settings{Events: SupportedEvents(), BatchEvents: []string{"workflow_run", "issues.edited"}}
	tests := []struct {
		event, action string
		want          bool
	}{
		{"workflow_run", "completed", true},
		{"issues", "edited", true},
		{"issues", "opened", false},
		{"pull_request", "opened", false},
	}
	for _, tt := range tests {
		if got := s.Batched(tt.event, tt.action); got != tt.want {
			t.Errorf("Batched(%q, %q) = %v, want %v", tt.event, tt.action, got, tt.want)
		}
	}
	if got := (Settings{Events: SupportedEvents()}).Batched("workflow_run", "completed"); got {
		t.Errorf("Batched() with no batch_events = true, want false (the default is the Messages API)")
	}
}

func TestEnabled(t *testing.T) {
	t.Parallel()
	s := Settings{Events: []string{"issues.opened", "workflow_run"}}
	tests := []struct {
		event, action string
		want          bool
	}{
		{"issues", "opened", true},
		{"issues", "edited", false},
		{"workflow_run", "completed", true},
		{"pull_request", "opened", false},
	}
	for _, tt := range tests {
		if got := s.Enabled(tt.event, tt.action); got != tt.want {
			t.Errorf("Enabled(%q, %q) = %v, want %v", tt.event, tt.action, got, tt.want)
		}
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	secrets := []string{"admin-s3cret", "webhook-s3cret", "ghp-s3cret", "-----BEGIN KEY s3cret", "sk-ant-s3cret"}
	c := Default()
	c.AdminToken = Secret(secrets[0])
	c.GitHub.WebhookSecrets = []Secret{Secret(secrets[1])}
	c.GitHub.Token = Secret(secrets[2])
	c.GitHub.AppPrivateKey = Secret(secrets[3])
	c.Anthropic.APIKey = Secret(secrets[4])

	jsonBytes, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "token", c.GitHub.Token, "cfg", c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "token", c.GitHub.Token, "cfg", c)

	outputs := map[string]string{
		"Redacted()": c.Redacted(),
		"%v":         fmt.Sprintf("%v", c),
		"%+v":        fmt.Sprintf("%+v", c),
		"%#v":        fmt.Sprintf("%#v", c),
		//lint:ignore S1025 this line tests how %s formats a Secret
		"%s token": fmt.Sprintf("%s", c.GitHub.Token),
		"%q token": fmt.Sprintf("%q", c.GitHub.Token),
		"json":     string(jsonBytes),
		"slog":     logged.String(),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, "s3cret") {
				t.Errorf("%s leaks a secret (%q):\n%s", name, s, out)
				break
			}
		}
	}
	red := c.Redacted()
	for _, want := range []string{"admin_token: '[redacted]'", "token: '[redacted]'", "- '[redacted]'", "job_timeout: 2m0s", "listen: :8080"} {
		if !strings.Contains(red, want) {
			t.Errorf("Redacted() does not contain %q:\n%s", want, red)
		}
	}
	if got := Default().Redacted(); !strings.Contains(got, `admin_token: ""`) {
		t.Errorf("Redacted() of an unset secret should be empty:\n%s", got)
	}
	if got := c.GitHub.Token.Value(); got != secrets[2] {
		t.Errorf("Value() = %q, want %q", got, secrets[2])
	}
}

// A budget alert webhook URL is a credential (Slack's carry a token): a bad
// one is reported without being echoed.
func TestAlertWebhookNotEchoed(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Budget.AlertWebhook = "hooks.example/T0/secret-part"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "secret-part") {
		t.Errorf("Validate() = %v, want an error that does not show the URL", err)
	}
	if strings.Contains(c.Redacted(), "secret-part") {
		t.Errorf("Redacted() shows the alert webhook:\n%s", c.Redacted())
	}
}

func TestAllowlistFromEnv(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "github:\n  allowed_owners: [from-file]\n", map[string]string{
		"GITHUB_ALLOWED_OWNERS":        " acme, octo-org ,,",
		"GITHUB_ALLOWED_INSTALLATIONS": "12345, 678",
	})
	if want := []string{"acme", "octo-org"}; !reflect.DeepEqual(c.GitHub.AllowedOwners, want) {
		t.Errorf("AllowedOwners = %q, want %q", c.GitHub.AllowedOwners, want)
	}
	if want := []int64{12345, 678}; !reflect.DeepEqual(c.GitHub.AllowedInstallations, want) {
		t.Errorf("AllowedInstallations = %v, want %v", c.GitHub.AllowedInstallations, want)
	}
	if c := mustLoad(t, "github:\n  allowed_owners: [from-file]\n", nil); !reflect.DeepEqual(c.GitHub.AllowedOwners, []string{"from-file"}) {
		t.Errorf("AllowedOwners from the file = %q, want [from-file]", c.GitHub.AllowedOwners)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://hookwise:S3CRET-PG-PASSWORD@db:5432/hookwise?sslmode=require",
			"postgres://hookwise:[redacted]@db:5432/hookwise?sslmode=require"},
		{"postgresql://u:p%40ss%3Aw0rd@db/h", "postgresql://u:[redacted]@db/h"},
		{"postgres://u:S3CRET@[::1]:5432/h", "postgres://u:[redacted]@[::1]:5432/h"},
		{"postgres://hookwise@db/h?password=S3CRET&sslmode=disable", "postgres://hookwise@db/h?password=[redacted]&sslmode=disable"},
		{"postgres://db/h?sslpassword=S3CRET", "postgres://db/h?sslpassword=[redacted]"},
		{"postgres://hookwise@db/h", "postgres://hookwise@db/h"},
		{"postgres://u:S3CRET@db:port/h", "postgres://[redacted]"}, // does not parse
		{"postgres://u:S3CRET@db/h\x7f", "postgres://[redacted]"},
		{"./data/hookwise.db", "./data/hookwise.db"},
		{"/var/lib/pass:word@x.db", "/var/lib/pass:word@x.db"},
		{"https://api.github.com/", "https://api.github.com/"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(RedactURL(tt.in), "S3CRET") || strings.Contains(RedactURL(tt.in), "w0rd") {
			t.Errorf("RedactURL(%q) = %q, leaks the password", tt.in, RedactURL(tt.in))
		}
	}
}

func TestRedactedDatabaseURL(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", map[string]string{
		"HOOKWISE_DATABASE_URL": "postgres://hookwise:S3CRET-PG-PASSWORD@db:5432/hookwise?sslmode=require",
		"GITHUB_API_URL":        "https://proxy:S3CRET-API-PASSWORD@ghe.example.com/api/v3/",
	})
	red := c.Redacted()
	if strings.Contains(red, "S3CRET") {
		t.Errorf("Redacted() shows a password:\n%s", red)
	}
	for _, want := range []string{"database_url: postgres://hookwise:[redacted]@db:5432/hookwise?sslmode=require",
		"api_url: https://proxy:[redacted]@ghe.example.com/api/v3/"} {
		if !strings.Contains(red, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, red)
		}
	}
	if c.DatabaseURL != "postgres://hookwise:S3CRET-PG-PASSWORD@db:5432/hookwise?sslmode=require" {
		t.Errorf("DatabaseURL = %q after Redacted(), want it unchanged", c.DatabaseURL)
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DatabaseURL = "postgres://hookwise:S3CRET%2FPG@db/hookwise?sslpassword=S3CRET-SSL-PW"
	c.GitHub.WebhookSecrets = []Secret{"S3CRET-HOOK-1", "S3CRET-HOOK-2"}
	c.GitHub.Token = "S3CRET-GH-TOKEN"
	c.GitHub.AppPrivateKey = "-----BEGIN RSA PRIVATE KEY-----\nS3CRETKEYBODY\n-----END RSA PRIVATE KEY-----\n"
	c.Anthropic.APIKey = "S3CRET-ANTHROPIC"
	c.AdminToken = "S3CRET-ADMIN"
	c.Budget.AlertWebhook = "https://hooks.example.com/services/S3CRET-PATH"
	redact := c.Redactor()
	tests := []struct{ in, want string }{
		{`open database: cannot parse "` + c.DatabaseURL + `": bad`, `open database: cannot parse "postgres://hookwise:[redacted]@db/hookwise?sslpassword=[redacted]": bad`},
		{"auth failed for password S3CRET/PG", "auth failed for password [redacted]"},
		{"auth failed for password S3CRET%2FPG", "auth failed for password [redacted]"},
		{"sslpassword S3CRET-SSL-PW", "sslpassword [redacted]"},
		{"sig S3CRET-HOOK-2 and S3CRET-HOOK-1", "sig [redacted] and [redacted]"},
		{"Bearer S3CRET-GH-TOKEN; x-api-key S3CRET-ANTHROPIC; S3CRET-ADMIN", "Bearer [redacted]; x-api-key [redacted]; [redacted]"},
		{`Post "https://hooks.example.com/services/S3CRET-PATH": EOF`, `Post "[redacted]": EOF`},
		{"key " + c.GitHub.AppPrivateKey.Value(), "key [redacted]\n"},
		{"nothing secret here", "nothing secret here"},
	}
	for _, tt := range tests {
		if got := redact(tt.in); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	sqlite := Default()
	sqlite.DatabaseURL = "/var/lib/hookwise/hookwise.db"
	if got := sqlite.Redactor()("open /var/lib/hookwise/hookwise.db: denied"); got != "open /var/lib/hookwise/hookwise.db: denied" {
		t.Errorf("redact with a SQLite path = %q, want the path shown", got)
	}
	// Values too short to be real secrets are left alone: scrubbing them
	// would blank ordinary words.
	short := Default()
	short.GitHub.Token, short.Anthropic.APIKey = "x", "key"
	if got := short.Redactor()("x marks the key"); got != "x marks the key" {
		t.Errorf("redact with short secrets = %q, want it unchanged", got)
	}
}

func TestWebhookSources(t *testing.T) {
	t.Parallel()
	const yamlText = `
webhook:
  allow_sources: [github, "198.51.100.0/24"]
  trusted_proxies: ["10.0.0.0/8"]
  client_body_share: 0.125
  client_max_unverified: 8
  penalty_failures: 0
`
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		w := mustLoad(t, yamlText, nil).Webhook
		want := Default().Webhook
		want.AllowSources, want.TrustedProxies = []string{"github", "198.51.100.0/24"}, []string{"10.0.0.0/8"}
		want.ClientBodyShare, want.ClientMaxUnverified, want.PenaltyFailures = 0.125, 8, 0
		if !reflect.DeepEqual(w, want) {
			t.Errorf("webhook = %+v, want %+v", w, want)
		}
	})
	t.Run("env over file", func(t *testing.T) {
		t.Parallel()
		w := mustLoad(t, yamlText, map[string]string{
			"HOOKWISE_ALLOW_SOURCES":   " 192.30.252.0/22, ,github",
			"HOOKWISE_TRUSTED_PROXIES": "172.16.0.0/12,fd00::/8",
		}).Webhook
		if want := []string{"192.30.252.0/22", "github"}; !reflect.DeepEqual(w.AllowSources, want) {
			t.Errorf("allow_sources = %q, want %q", w.AllowSources, want)
		}
		if want := []string{"172.16.0.0/12", "fd00::/8"}; !reflect.DeepEqual(w.TrustedProxies, want) {
			t.Errorf("trusted_proxies = %q, want %q", w.TrustedProxies, want)
		}
	})
	t.Run("bad env entry names the key", func(t *testing.T) {
		t.Parallel()
		_, err := Load("", map[string]string{"HOOKWISE_TRUSTED_PROXIES": "10.0.0.1,proxy.internal"})
		if want := `webhook.trusted_proxies[1]: want a CIDR like "192.30.252.0/22" or an address, got "proxy.internal"`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load() = %v, want an error containing %q", err, want)
		}
	})
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, want string
	}{
		{"192.30.252.0/22", "192.30.252.0/22"},
		{"192.30.253.7/22", "192.30.252.0/22"}, // host bits dropped
		{" 10.1.2.3 ", "10.1.2.3/32"},
		{"2a0a:a440::/29", "2a0a:a440::/29"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"github", ""},
		{"10.0.0.0/33", ""},
		{"fe80::1%eth0", ""},
		{"", ""},
	} {
		got, err := ParseSource(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseSource(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseSource(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
