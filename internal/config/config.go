// Package config holds hookwise's configuration: built-in defaults, a strict
// YAML file, environment overrides and validation. It never reads the
// environment or flags itself; cmd/hookwise passes them in, so tests and the
// demo can build a Config without touching the process.
package config

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration of one hookwise process.
type Config struct {
	Listen string `yaml:"listen"`
	// MetricsListen, when set, serves GET /metrics on this address instead
	// of on Listen (which then answers 404 there): the webhook port can face
	// the internet while metrics stay on an internal one.
	MetricsListen string `yaml:"metrics_listen"`
	DatabaseURL   string `yaml:"database_url"`
	// DatabaseMaxConnections caps each instance's PostgreSQL connections;
	// the fleet's total must stay under the server's max_connections.
	DatabaseMaxConnections int             `yaml:"database_max_connections"`
	AdminToken             Secret          `yaml:"admin_token"`
	LogFormat              string          `yaml:"log_format"`
	GitHub                 GitHubConfig    `yaml:"github"`
	Anthropic              AnthropicConfig `yaml:"anthropic"`
	Queue                  QueueConfig     `yaml:"queue"`
	Sweep                  SweepConfig     `yaml:"sweep"`
	Budget                 BudgetConfig    `yaml:"budget"`
	Retention              RetentionConfig `yaml:"retention"`
	Webhook                WebhookConfig   `yaml:"webhook"`
	PromptsDir             string          `yaml:"prompts_dir"`
	Defaults               RepoSettings    `yaml:"defaults"`
	Repositories           []RepoRule      `yaml:"repositories"`
	ShutdownTimeout        Duration        `yaml:"shutdown_timeout"`
}

// GitHubConfig configures webhook verification and the GitHub API client.
// Either Token (a PAT) or AppID with a private key authenticates the client.
type GitHubConfig struct {
	// WebhookSecrets holds every secret a delivery may be signed with;
	// several allow rotation without dropping deliveries.
	WebhookSecrets    []Secret `yaml:"webhook_secrets"`
	Token             Secret   `yaml:"token"`
	AppID             int64    `yaml:"app_id"`
	AppPrivateKey     Secret   `yaml:"app_private_key"`
	AppPrivateKeyFile string   `yaml:"app_private_key_file"`
	APIURL            string   `yaml:"api_url"`
	// WritesPerMinute and WritesPerHour pace content-creating requests per
	// token; GitHub's secondary limits are 80 a minute and 500 an hour.
	WritesPerMinute int `yaml:"writes_per_minute"`
	WritesPerHour   int `yaml:"writes_per_hour"`
	// MaxConcurrency caps the requests in flight per token: GitHub asks
	// integrations not to make many at once.
	MaxConcurrency int `yaml:"max_concurrency"`
	// BotLogins are extra logins whose events are ignored, on top of
	// hookwise's own identity and logins ending in "[bot]".
	BotLogins []string `yaml:"bot_logins"`
	// AllowedOwners and AllowedInstallations say whose deliveries are
	// processed (see allowlist.go): a delivery is when either list admits
	// it; the others are skipped as not_allowed. AllowedOwners holds
	// account logins, or "*" for every owner.
	AllowedOwners        []string `yaml:"allowed_owners"`
	AllowedInstallations []int64  `yaml:"allowed_installations"`
}

// AnthropicConfig configures the Claude client.
type AnthropicConfig struct {
	APIKey         Secret `yaml:"api_key"`
	BaseURL        string `yaml:"base_url"`
	Model          string `yaml:"model"`
	MaxConcurrency int    `yaml:"max_concurrency"`
	// MaxTokens caps every answer; each kind of analysis asks for no more
	// than its answer needs, and never more than this.
	MaxTokens int `yaml:"max_tokens"`
	// Prices override or extend the built-in price table, by model id
	// prefix (the longest matching prefix wins), in dollars per million
	// tokens.
	Prices map[string]Price `yaml:"prices,omitempty"`
	// BatchInterval is how often the leader submits the requests waiting
	// for the Message Batches API (see RepoSettings.BatchEvents) and
	// collects the results of the batches that ended.
	BatchInterval Duration `yaml:"batch_interval"`
}

// Price is what a million tokens of each kind cost, in dollars.
type Price struct {
	Input      float64 `yaml:"input"`
	Output     float64 `yaml:"output"`
	CacheWrite float64 `yaml:"cache_write"`
	CacheRead  float64 `yaml:"cache_read"`
}

// RetentionConfig says how long stored rows are kept; the leader prunes
// older ones every Interval. Dead letters (failed deliveries) and
// deliveries not finished are kept whatever their age.
type RetentionConfig struct {
	// Deliveries: handled deliveries, their answers, thread state and the
	// comment ledger (a comment older than this is found again by its
	// marker on GitHub, among the thread's newest 100 comments).
	Deliveries Duration `yaml:"deliveries"`
	// Ledger: the usage and cost ledger and budget alerts.
	Ledger Duration `yaml:"ledger"`
	// Jobs: River's completed jobs. The jobs of dead letters are kept as
	// long as deliveries, for their attempt history.
	Jobs Duration `yaml:"jobs"`
	// Interval between prunes; 0 turns pruning off.
	Interval Duration `yaml:"interval"`
}

// BudgetConfig bounds what model calls may cost. Limits are in dollars;
// 0 means no limit. Days and months are UTC. Daily is DefaultDailyBudget
// unless the configuration sets it, to 0 included.
type BudgetConfig struct {
	Daily   float64 `yaml:"daily"`
	Monthly float64 `yaml:"monthly"`
	// Scopes are further limits on part of the traffic.
	Scopes []BudgetScope `yaml:"scopes,omitempty"`
	// OnLimit is what happens to a call that would cross a limit: "defer"
	// it until the period resets, "fallback" to FallbackModel if that fits
	// (else defer), or "skip" it with a note on the thread.
	OnLimit       string `yaml:"on_limit"`
	FallbackModel string `yaml:"fallback_model"`
	// AlertThresholds are percentages of a limit; each fires once per
	// scope and period, to AlertWebhook.
	AlertThresholds []int  `yaml:"alert_thresholds"`
	AlertWebhook    Secret `yaml:"alert_webhook"`
	// AlertFormat is "slack" ({"text": ...}, which Slack-compatible
	// incoming webhooks take) or "json" (every field of the alert).
	AlertFormat string `yaml:"alert_format"`
}

// BudgetScope limits the spending of one repository ("repo:owner/name"),
// organisation or user ("org:owner") or App installation
// ("installation:ID").
type BudgetScope struct {
	Match   string  `yaml:"match"`
	Daily   float64 `yaml:"daily"`
	Monthly float64 `yaml:"monthly"`
}

// DefaultDailyBudget is budget.daily, in dollars, unless the configuration
// sets it: a stranger who opens issues and pull requests cannot run up more
// than this a day before someone has chosen a budget. At Sonnet 4.5's
// prices it pays for about 100 to 300 analyses (a triage costs about two
// cents, a review of a large diff ten to fifteen).
const DefaultDailyBudget = 5.0

// BudgetSummary is one line on the global budgets, for check-config and the
// start-up log, such as "budget: daily $5.00 (the default; raise
// budget.daily in the config, or set it to 0 for no limit); monthly no
// limit; over a limit: defer".
func (c Config) BudgetSummary() string {
	amount := func(v float64) string {
		if v == 0 {
			return "no limit"
		}
		return fmt.Sprintf("$%.2f", v)
	}
	daily := amount(c.Budget.Daily)
	if c.Budget.Daily == DefaultDailyBudget {
		daily += " (the default; raise budget.daily in the config, or set it to 0 for no limit)"
	}
	s := fmt.Sprintf("budget: daily %s; monthly %s", daily, amount(c.Budget.Monthly))
	if n := len(c.Budget.Scopes); n > 0 {
		s += fmt.Sprintf("; %d scoped budgets", n)
	}
	return s + "; over a limit: " + c.Budget.OnLimit
}

// Budget limit actions.
const (
	OnLimitDefer    = "defer"
	OnLimitFallback = "fallback"
	OnLimitSkip     = "skip"
)

// WebhookConfig guards POST /webhook before a delivery's signature is
// checked.
type WebhookConfig struct {
	// AllowSources, when set, are the only sources whose requests are read
	// (others get 403): CIDRs or addresses, and "github" for the hook
	// ranges GitHub lists at GET /meta of github.api_url.
	AllowSources []string `yaml:"allow_sources,omitempty"`
	// TrustedProxies are the proxies (CIDRs or addresses) whose
	// X-Forwarded-For is believed; without them it is ignored.
	TrustedProxies []string `yaml:"trusted_proxies,omitempty"`
	// ClientBodyShare is the part of the body memory (256 MiB) that one
	// client (an IPv4 address or IPv6 /64) may hold before its signature
	// is checked; 1 turns the share off.
	ClientBodyShare float64 `yaml:"client_body_share"`
	// ClientMaxUnverified caps one client's requests whose signature is
	// not checked yet.
	ClientMaxUnverified int `yaml:"client_max_unverified"`
	// PenaltyFailures failures (missing or wrong signature, body too large
	// or too slow) within PenaltyWindow answer the client 429 for
	// PenaltyDuration, before its body is read; 0 turns it off.
	PenaltyFailures int      `yaml:"penalty_failures"`
	PenaltyWindow   Duration `yaml:"penalty_window"`
	PenaltyDuration Duration `yaml:"penalty_duration"`
	// HookRangesRefresh is how often GitHub's hook ranges are fetched
	// again when AllowSources has "github".
	HookRangesRefresh Duration `yaml:"hook_ranges_refresh"`
}

// AllowGitHub is the AllowSources entry for GitHub's published hook ranges.
const AllowGitHub = "github"

// ParseSource reads an allow_sources or trusted_proxies entry: a CIDR
// ("192.30.252.0/22") or an address (a /32 or /128).
func ParseSource(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf(`want a CIDR like "192.30.252.0/22" or an address, got %q`, s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// QueueConfig configures River.
type QueueConfig struct {
	Workers     int      `yaml:"workers"`
	MaxAttempts int      `yaml:"max_attempts"`
	JobTimeout  Duration `yaml:"job_timeout"`
	// RescueAfter must exceed JobTimeout, or River would rescue jobs that
	// are still running.
	RescueAfter Duration `yaml:"rescue_after"`
	// MaxAge: a job older than this is not retried again (a dead letter).
	MaxAge Duration `yaml:"max_age"`
	// MaxBackoff caps the wait between two attempts.
	MaxBackoff Duration `yaml:"max_backoff"`
	// Priorities order the work when it queues up behind GitHub's write
	// allowance or the workers: 1 is served first, 4 last.
	Priorities Priorities `yaml:"priorities"`
	// DrainAlert: when the work waiting for a GitHub credential's write
	// allowance would take longer than this to drain, an alert goes to
	// budget.alert_webhook (and the log); 0 turns it off.
	DrainAlert Duration `yaml:"drain_alert"`
}

// Priorities rank each kind of work, 1 (first) to 4 (last).
type Priorities struct {
	ReviewRequest int `yaml:"review_request"` // a review someone asked hookwise for
	Review        int `yaml:"review"`         // a pull request opened or pushed
	WorkflowRun   int `yaml:"workflow_run"`   // a failed run to explain
	Triage        int `yaml:"triage"`         // an issue to triage
}

// For returns the priority of a delivery of event.action.
func (p Priorities) For(event, action string) int {
	switch {
	case event == "pull_request" && action == "review_requested":
		return p.ReviewRequest
	case event == "pull_request":
		return p.Review
	case event == "workflow_run":
		return p.WorkflowRun
	}
	return p.Triage
}

// SweepConfig configures the recovery of deliveries GitHub failed to make.
type SweepConfig struct {
	// Hooks to sweep: "repo:owner/name#HOOK_ID", "org:owner#HOOK_ID" or
	// "app". Empty: the hooks seen in the deliveries of the last 3 days.
	Hooks []string `yaml:"hooks"`
	// Interval between sweeps; 0 turns the periodic sweep off.
	Interval Duration `yaml:"interval"`
	// Window is how far back a sweep looks; GitHub keeps 3 days.
	Window Duration `yaml:"window"`
}

// RepoSettings says what hookwise does in a repository. Pointer and slice
// fields distinguish "not set" (nil: inherit) from an explicit value, so a
// rule can turn off what Defaults turned on.
type RepoSettings struct {
	// Events are "event.action" names (e.g. "issues.opened") or a bare
	// event name meaning every supported action of it.
	Events []string `yaml:"events,omitempty"`
	// BatchEvents are the events, named as in Events, that are not urgent:
	// they are answered through the Message Batches API, at half the price,
	// within 24 hours (usually minutes). Only events in Events are handled
	// at all.
	BatchEvents  []string `yaml:"batch_events,omitempty"`
	PostComments *bool    `yaml:"post_comments,omitempty"`
	ApplyLabels  *bool    `yaml:"apply_labels,omitempty"`
	// LabelAllowlist names every label hookwise may apply. Empty: only the
	// conventional triage labels (bug, enhancement, question,
	// documentation, invalid, duplicate, help wanted, good first issue,
	// size labels) that the repository has.
	LabelAllowlist []string `yaml:"label_allowlist,omitempty"`
	// OutsiderLabelAllowlist is the part of the allowed labels hookwise
	// may apply to the threads of outsiders (authors without write access,
	// pull requests from forks), whose text steers the model. Empty: the
	// allowed labels that are conventional triage labels, so a label that
	// gates a workflow ("safe-to-test") is never applied to them.
	OutsiderLabelAllowlist []string `yaml:"outsider_label_allowlist,omitempty"`
	AutoCloseInvalid       *bool    `yaml:"auto_close_invalid,omitempty"`
	ReviewDrafts           *bool    `yaml:"review_drafts,omitempty"`
	Model                  string   `yaml:"model,omitempty"` // "": anthropic.model
	// QuietPeriod is how long a thread must go without a new event before
	// it is analysed, so that a burst (an issue opened then edited, a pull
	// request pushed several times) costs one analysis of its latest state.
	QuietPeriod *Duration `yaml:"quiet_period,omitempty"`
	// MaxAnalysesPerThread caps the analyses of one thread in 24 hours.
	MaxAnalysesPerThread *int `yaml:"max_analyses_per_thread,omitempty"`
	// MaxAnalysesPerAuthor caps, per author, the analyses of the threads
	// they opened (and of the workflow runs their forks triggered) in 24
	// hours, counted across every repository; 0 turns the cap off.
	MaxAnalysesPerAuthor *int `yaml:"max_analyses_per_author,omitempty"`
	// AuthorLimitExempt lists the author associations GitHub reports
	// (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR,
	// FIRST_TIMER, NONE) whose threads MaxAnalysesPerAuthor does not cap.
	AuthorLimitExempt []string `yaml:"author_limit_exempt,omitempty"`
	// MinContentChars: issues whose title and body together have fewer
	// letters and digits than this are not analysed.
	MinContentChars *int `yaml:"min_content_chars,omitempty"`
	// MinChangeChars: an edit of an analysed issue is analysed again only
	// when at least this many characters of its title and body changed.
	MinChangeChars *int `yaml:"min_change_chars,omitempty"`
	// IgnoreLabels: threads carrying any of these labels are left alone.
	IgnoreLabels []string `yaml:"ignore_labels,omitempty"`
	// IgnoreAuthors: threads opened by these logins are left alone.
	IgnoreAuthors []string `yaml:"ignore_authors,omitempty"`
	// IgnorePaths: pull requests that change only files matching these
	// globs ("docs/**", "*.md") are not reviewed.
	IgnorePaths []string `yaml:"ignore_paths,omitempty"`
	// Branches: only pull requests into these base branches (globs) are
	// reviewed; empty means every branch.
	Branches []string `yaml:"branches,omitempty"`
	// Context is text about the repository put in the stable, cached part
	// of every prompt: what the project is, its conventions.
	Context string `yaml:"context,omitempty"`
}

// RepoRule overrides Defaults for the repositories matching Match, an
// "owner/name" or a path.Match glob such as "owner/*".
type RepoRule struct {
	Match        string `yaml:"match"`
	RepoSettings `yaml:",inline"`
}

// Settings are the resolved settings of one repository.
type Settings struct {
	Events           []string
	BatchEvents      []string
	PostComments     bool
	ApplyLabels      bool
	LabelAllowlist   []string
	OutsiderLabels   []string
	AutoCloseInvalid bool
	ReviewDrafts     bool
	Model            string
	QuietPeriod      time.Duration
	MaxAnalyses      int
	MaxPerAuthor     int
	AuthorExempt     []string
	MinContentChars  int
	MinChangeChars   int
	IgnoreLabels     []string
	IgnoreAuthors    []string
	IgnorePaths      []string
	Branches         []string
	Context          string
}

// authorAssociations are the values of author_association in GitHub's
// payloads.
func authorAssociations() []string {
	return []string{"OWNER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN", "NONE"}
}

// DefaultMaxAnalysesPerAuthor is defaults.max_analyses_per_author unless
// set: ten analyses a day let a newcomer open a few issues and push a pull
// request a few times, and keep one stranger from spending the day's
// budget alone.
const DefaultMaxAnalysesPerAuthor = 10

// SupportedEvents lists the "event.action" names hookwise can handle.
func SupportedEvents() []string {
	return []string{
		"issues.opened",
		"issues.edited",
		"pull_request.opened",
		"pull_request.synchronize",
		"pull_request.ready_for_review",
		"pull_request.review_requested",
		"workflow_run.completed",
	}
}

// defaultEvents is every supported event: edits and pushes are coalesced
// and filtered, so they cost a call only when something that matters
// changed.
func defaultEvents() []string { return SupportedEvents() }

func ptr[T any](v T) *T { return &v }

// Default returns the built-in configuration.
func Default() Config {
	return Config{
		Listen:                 ":8080",
		DatabaseURL:            "./data/hookwise.db",
		DatabaseMaxConnections: 20,
		GitHub: GitHubConfig{
			APIURL:          "https://api.github.com/",
			WritesPerMinute: 80,
			WritesPerHour:   500,
			MaxConcurrency:  4,
		},
		Anthropic: AnthropicConfig{
			Model:          "claude-sonnet-4-5",
			MaxConcurrency: 4,
			MaxTokens:      2048,
			BatchInterval:  Duration(time.Minute),
		},
		Queue: QueueConfig{
			Workers:     20,
			MaxAttempts: 10,
			JobTimeout:  Duration(2 * time.Minute),
			RescueAfter: Duration(5 * time.Minute),
			MaxAge:      Duration(24 * time.Hour),
			MaxBackoff:  Duration(10 * time.Minute),
			Priorities:  Priorities{ReviewRequest: 1, Review: 2, WorkflowRun: 3, Triage: 4},
			DrainAlert:  Duration(2 * time.Hour),
		},
		Sweep: SweepConfig{
			Interval: Duration(10 * time.Minute),
			Window:   Duration(24 * time.Hour),
		},
		Retention: RetentionConfig{
			Deliveries: Duration(30 * 24 * time.Hour),
			Ledger:     Duration(400 * 24 * time.Hour),
			Jobs:       Duration(24 * time.Hour),
			Interval:   Duration(time.Hour),
		},
		Budget: BudgetConfig{
			Daily:           DefaultDailyBudget,
			OnLimit:         OnLimitDefer,
			FallbackModel:   "claude-haiku-4-5",
			AlertThresholds: []int{50, 80, 100},
			AlertFormat:     "slack",
		},
		Webhook: WebhookConfig{
			ClientBodyShare:     1.0 / 16,
			ClientMaxUnverified: 32,
			PenaltyFailures:     5,
			PenaltyWindow:       Duration(time.Minute),
			PenaltyDuration:     Duration(5 * time.Minute),
			HookRangesRefresh:   Duration(time.Hour),
		},
		Defaults:        defaultRepoSettings(),
		ShutdownTimeout: Duration(30 * time.Second),
	}
}

func defaultRepoSettings() RepoSettings {
	return RepoSettings{
		Events:               defaultEvents(),
		PostComments:         ptr(true),
		ApplyLabels:          ptr(true),
		AutoCloseInvalid:     ptr(false),
		ReviewDrafts:         ptr(false),
		QuietPeriod:          ptr(Duration(30 * time.Second)),
		MaxAnalysesPerThread: ptr(3),
		MaxAnalysesPerAuthor: ptr(DefaultMaxAnalysesPerAuthor),
		AuthorLimitExempt:    []string{"OWNER", "MEMBER", "COLLABORATOR"},
		MinContentChars:      ptr(15),
		MinChangeChars:       ptr(40),
	}
}

// Load builds a Config from the defaults, then the YAML file at path (if
// path is not empty), then env, and validates the result. env holds
// environment variables by name; cmd/hookwise passes the process
// environment (see ParseEnviron).
func Load(path string, env map[string]string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		if err := decodeYAML(path, b, &c); err != nil {
			return Config{}, err
		}
	}
	if err := c.applyEnv(env); err != nil {
		return Config{}, err
	}
	if err := c.loadPrivateKeyFile(env); err != nil {
		return Config{}, err
	}
	if c.GitHub.APIURL != "" && !strings.HasSuffix(c.GitHub.APIURL, "/") {
		// go-github resolves paths against the base, which needs the slash.
		c.GitHub.APIURL += "/"
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ParseEnviron turns os.Environ-style "KEY=value" pairs into the map Load
// takes.
func ParseEnviron(kv []string) map[string]string {
	env := make(map[string]string, len(kv))
	for _, s := range kv {
		if k, v, ok := strings.Cut(s, "="); ok {
			env[k] = v
		}
	}
	return env
}

// decodeYAML decodes b strictly into c. Errors name the file, line and key
// path; values of secret keys are left out.
func decodeYAML(file string, b []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err := dec.Decode(c)
	if err == nil || errors.Is(err, io.EOF) { // EOF: empty file
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("config %s: %w", file, err)
	}
	keys := keyLines(b)
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		msgs = append(msgs, describeYAMLError(file, e, keys))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

var (
	lineRE       = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE    = regexp.MustCompile(`^field (\S+) not found in type`)
	yamlValueRE  = regexp.MustCompile("`[^`]*`")
	secretKeyRE  = regexp.MustCompile(`(^|\.)(admin_token|database_url|webhook_secrets(\[\d+\])?|token|app_private_key|api_key|alert_webhook)$`)
	eventNameRE  = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)?$`)
	yamlTypeName = strings.NewReplacer("config.", "")
)

// describeYAMLError rewrites one yaml.v3 type error ("line 7: field x not
// found in type config.QueueConfig") as "file:7: queue.x: unknown key".
func describeYAMLError(file, e string, keys map[int]string) string {
	m := lineRE.FindStringSubmatch(e)
	if m == nil {
		return fmt.Sprintf("config %s: %s", file, e)
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	key := keys[line]
	if u := unknownRE.FindStringSubmatch(msg); u != nil {
		msg = "unknown key"
		if key == "" {
			key = u[1]
		}
	}
	if key == "" || secretKeyRE.MatchString(key) {
		// yaml.v3 quotes up to 7 characters of the value; never show
		// them where they may be part of a secret.
		msg = yamlValueRE.ReplaceAllString(msg, "value")
	}
	msg = yamlTypeName.Replace(msg)
	if key == "" {
		return fmt.Sprintf("%s:%d: %s", file, line, msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", file, line, key, msg)
}

// keyLines maps each line holding a mapping key or sequence item to its key
// path ("queue.workers", "repositories[2].match"). Where several keys share
// a line (flow style) the first wins.
func keyLines(b []byte) map[int]string {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil {
		return nil
	}
	keys := make(map[int]string)
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if prefix != "" {
					p = prefix + "." + k.Value
				}
				if _, ok := keys[k.Line]; !ok {
					keys[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", prefix, i)
				if _, ok := keys[c.Line]; !ok {
					keys[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(&doc, "")
	return keys
}

// applyEnv overrides c with the environment. Empty variables count as unset.
func (c *Config) applyEnv(env map[string]string) error {
	e := &envReader{env: env}
	e.str("HOOKWISE_LISTEN", &c.Listen)
	e.str("HOOKWISE_METRICS_LISTEN", &c.MetricsListen)
	e.str("HOOKWISE_DATABASE_URL", &c.DatabaseURL)
	e.integer("HOOKWISE_DATABASE_MAX_CONNECTIONS", func(n int64) { c.DatabaseMaxConnections = int(n) })
	e.secret("HOOKWISE_ADMIN_TOKEN", &c.AdminToken)
	e.str("HOOKWISE_LOG_FORMAT", &c.LogFormat)
	e.str("HOOKWISE_PROMPTS_DIR", &c.PromptsDir)
	e.integer("HOOKWISE_WORKERS", func(n int64) { c.Queue.Workers = int(n) })
	e.list("HOOKWISE_ALLOW_SOURCES", &c.Webhook.AllowSources)
	e.list("HOOKWISE_TRUSTED_PROXIES", &c.Webhook.TrustedProxies)
	c.GitHub.applyEnv(e)
	e.secret("ANTHROPIC_API_KEY", &c.Anthropic.APIKey)
	e.str("ANTHROPIC_BASE_URL", &c.Anthropic.BaseURL)
	e.str("ANTHROPIC_MODEL", &c.Anthropic.Model)
	e.dollars("HOOKWISE_BUDGET_DAILY", &c.Budget.Daily)
	e.dollars("HOOKWISE_BUDGET_MONTHLY", &c.Budget.Monthly)
	e.secret("HOOKWISE_ALERT_WEBHOOK", &c.Budget.AlertWebhook)
	return errors.Join(e.errs...)
}

func (g *GitHubConfig) applyEnv(e *envReader) {
	var secrets []string
	e.list("GITHUB_WEBHOOK_SECRET", &secrets)
	if len(secrets) > 0 {
		g.WebhookSecrets = nil
		for _, s := range secrets {
			g.WebhookSecrets = append(g.WebhookSecrets, Secret(s))
		}
	}
	e.secret("GITHUB_TOKEN", &g.Token)
	e.integer("GITHUB_APP_ID", func(n int64) { g.AppID = n })
	// A key from the environment replaces the file's key in either form.
	key, keyFile := e.env["GITHUB_APP_PRIVATE_KEY"], e.env["GITHUB_APP_PRIVATE_KEY_FILE"]
	switch {
	case key != "" && keyFile != "":
		e.errs = append(e.errs, errors.New("GITHUB_APP_PRIVATE_KEY_FILE: set either it or GITHUB_APP_PRIVATE_KEY, not both"))
	case key != "":
		g.AppPrivateKey, g.AppPrivateKeyFile = Secret(key), ""
	case keyFile != "":
		g.AppPrivateKey, g.AppPrivateKeyFile = "", keyFile
	}
	e.str("GITHUB_API_URL", &g.APIURL)
	e.errs = append(e.errs, g.allowlistFromEnv(e.env)...)
	e.integer("GITHUB_WRITES_PER_MINUTE", func(n int64) { g.WritesPerMinute = int(n) })
	e.integer("GITHUB_WRITES_PER_HOUR", func(n int64) { g.WritesPerHour = int(n) })
}

// envReader sets configuration from environment variables: an unset or
// empty variable leaves the value alone; a malformed one is an error
// naming the variable.
type envReader struct {
	env  map[string]string
	errs []error
}

func (e *envReader) str(name string, dst *string) {
	if v := e.env[name]; v != "" {
		*dst = v
	}
}

func (e *envReader) secret(name string, dst *Secret) {
	if v := e.env[name]; v != "" {
		*dst = Secret(v)
	}
}

func (e *envReader) integer(name string, set func(int64)) {
	v := e.env[name]
	if v == "" {
		return
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: want a whole number, got %q", name, v))
		return
	}
	set(n)
}

func (e *envReader) dollars(name string, dst *float64) {
	v := e.env[name]
	if v == "" {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: want an amount in dollars like 5 or 0.50, got %q", name, v))
		return
	}
	*dst = f
}

// list reads a comma-separated list; one that holds nothing but commas
// and spaces leaves the value alone.
func (e *envReader) list(name string, dst *[]string) {
	var items []string
	for s := range strings.SplitSeq(e.env[name], ",") {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	if len(items) > 0 {
		*dst = items
	}
}

// loadPrivateKeyFile reads AppPrivateKeyFile into AppPrivateKey. Errors name
// where the file came from and never include its content.
func (c *Config) loadPrivateKeyFile(env map[string]string) error {
	file := c.GitHub.AppPrivateKeyFile
	if file == "" {
		return nil
	}
	name := "github.app_private_key_file"
	if env["GITHUB_APP_PRIVATE_KEY_FILE"] != "" {
		name = "GITHUB_APP_PRIVATE_KEY_FILE"
	}
	if c.GitHub.AppPrivateKey != "" {
		return fmt.Errorf("%s: set either it or github.app_private_key, not both", name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return fmt.Errorf("%s: read %s: %w", name, file, err)
	}
	c.GitHub.AppPrivateKey = Secret(b)
	return nil
}

// Validate checks everything but credentials, which only serving needs (see
// ValidateForServe). Every problem is reported, each naming its key.
func (c Config) Validate() error {
	var pr problems
	c.validateServer(&pr)
	c.GitHub.validate(&pr)
	c.Anthropic.validate(&pr)
	pr.add(c.Budget.validate()...)
	c.validateRetention(&pr)
	c.Queue.validate(&pr)
	pr.positive("shutdown_timeout", c.ShutdownTimeout)
	c.Sweep.validate(&pr)
	pr.add(c.Webhook.validate()...)
	pr.add(c.Defaults.validate("defaults")...)
	for i, r := range c.Repositories {
		key := fmt.Sprintf("repositories[%d]", i)
		if err := validateMatch(r.Match); err != nil {
			pr.bad(key+".match", "%v", err)
		}
		pr.add(r.RepoSettings.validate(key)...)
	}
	return errors.Join(pr.errs...)
}

// problems collects what is wrong with a configuration, each naming its
// key.
type problems struct{ errs []error }

func (pr *problems) add(errs ...error) { pr.errs = append(pr.errs, errs...) }

func (pr *problems) bad(key, format string, args ...any) {
	pr.errs = append(pr.errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
}

func (pr *problems) atLeast(key string, got, min int) {
	if got < min {
		pr.bad(key, "must be at least %d, got %d", min, got)
	}
}

func (pr *problems) positive(key string, d Duration) {
	if d <= 0 {
		pr.bad(key, "must be positive, got %s", d)
	}
}

func (pr *problems) notNegative(key string, d Duration, zero string) {
	if d < 0 {
		pr.bad(key, "must not be negative (0 %s), got %s", zero, d)
	}
}

func (pr *problems) url(key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		pr.bad(key, "want an http:// or https:// URL, got %q", RedactURL(s))
	}
}

// validateServer checks the listeners, the database and the log format.
func (c Config) validateServer(pr *problems) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		pr.bad("listen", "want host:port (e.g. \":8080\"), got %q", c.Listen)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			pr.bad("metrics_listen", "want host:port (e.g. \":9090\") or nothing, got %q", c.MetricsListen)
		} else if c.MetricsListen == c.Listen {
			pr.bad("metrics_listen", "must differ from listen (%q): leave it empty to serve /metrics there", c.Listen)
		}
	}
	if c.DatabaseURL == "" {
		pr.bad("database_url", "must not be empty")
	} else if c.UsesPostgres() {
		if u, err := url.Parse(c.DatabaseURL); err != nil || u.Host == "" && u.RawQuery == "" {
			// The URL may hold a password: never echo it.
			pr.bad("database_url", "not a valid PostgreSQL URL")
		}
	}
	pr.atLeast("database_max_connections", c.DatabaseMaxConnections, 2)
	switch c.LogFormat {
	case "", "json", "text":
	default:
		pr.bad("log_format", `want "json", "text" or "" (auto), got %q`, c.LogFormat)
	}
}

func (g GitHubConfig) validate(pr *problems) {
	for i, s := range g.WebhookSecrets {
		if s == "" {
			pr.bad(fmt.Sprintf("github.webhook_secrets[%d]", i), "must not be empty")
		}
	}
	if g.AppID < 0 {
		pr.bad("github.app_id", "must not be negative, got %d", g.AppID)
	}
	pr.url("github.api_url", g.APIURL)
	pr.atLeast("github.writes_per_minute", g.WritesPerMinute, 1)
	pr.atLeast("github.writes_per_hour", g.WritesPerHour, 1)
	pr.atLeast("github.max_concurrency", g.MaxConcurrency, 1)
	for i, l := range g.BotLogins {
		if strings.TrimSpace(l) == "" {
			pr.bad(fmt.Sprintf("github.bot_logins[%d]", i), "must not be empty")
		}
	}
	pr.add(g.validateAllowlist()...)
}

func (a AnthropicConfig) validate(pr *problems) {
	if a.BaseURL != "" {
		pr.url("anthropic.base_url", a.BaseURL)
	}
	if a.Model == "" {
		pr.bad("anthropic.model", "must not be empty")
	}
	pr.atLeast("anthropic.max_concurrency", a.MaxConcurrency, 1)
	pr.atLeast("anthropic.max_tokens", a.MaxTokens, 1)
	pr.positive("anthropic.batch_interval", a.BatchInterval)
	for model, p := range a.Prices {
		key := "anthropic.prices." + model
		if model == "" {
			pr.bad(key, "model id prefix must not be empty")
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"input", p.Input}, {"output", p.Output}, {"cache_write", p.CacheWrite}, {"cache_read", p.CacheRead}} {
			if !(f.v >= 0) || math.IsInf(f.v, 0) {
				pr.bad(key+"."+f.name, "want dollars per million tokens, at least 0, got %v", f.v)
			}
		}
		if p.Input == 0 || p.Output == 0 {
			pr.bad(key, "input and output prices must both be set")
		}
	}
}

// validateRetention: re-analysis limits count a thread's answers of the
// last 24 hours, and monthly budgets the month's spending.
func (c Config) validateRetention(pr *problems) {
	if c.Retention.Deliveries < Duration(48*time.Hour) {
		pr.bad("retention.deliveries", "must be at least 48h, got %s", c.Retention.Deliveries)
	}
	if c.Retention.Ledger < Duration(32*24*time.Hour) {
		pr.bad("retention.ledger", "must be at least 768h (32 days: a monthly budget needs its month), got %s", c.Retention.Ledger)
	}
	pr.positive("retention.jobs", c.Retention.Jobs)
	pr.notNegative("retention.interval", c.Retention.Interval, "turns pruning off")
}

func (q QueueConfig) validate(pr *problems) {
	pr.atLeast("queue.workers", q.Workers, 1)
	pr.atLeast("queue.max_attempts", q.MaxAttempts, 1)
	pr.positive("queue.job_timeout", q.JobTimeout)
	if q.RescueAfter <= q.JobTimeout {
		pr.bad("queue.rescue_after", "must be greater than queue.job_timeout (%s), got %s", q.JobTimeout, q.RescueAfter)
	}
	pr.positive("queue.max_age", q.MaxAge)
	pr.positive("queue.max_backoff", q.MaxBackoff)
	p := q.Priorities
	for i, n := range []int{p.ReviewRequest, p.Review, p.WorkflowRun, p.Triage} {
		if n < 1 || n > 4 {
			key := []string{"review_request", "review", "workflow_run", "triage"}[i]
			pr.bad("queue.priorities."+key, "must be 1 (first) to 4 (last), got %d", n)
		}
	}
	pr.notNegative("queue.drain_alert", q.DrainAlert, "turns the alert off")
}

func (s SweepConfig) validate(pr *problems) {
	for i, h := range s.Hooks {
		if err := validHook(h); err != nil {
			pr.bad(fmt.Sprintf("sweep.hooks[%d]", i), "%v", err)
		}
	}
	pr.notNegative("sweep.interval", s.Interval, "turns the sweep off")
	if s.Window <= 0 || s.Window > Duration(72*time.Hour) {
		pr.bad("sweep.window", "must be positive and at most 72h (GitHub keeps deliveries 3 days), got %s", s.Window)
	}
}

func (w WebhookConfig) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	for i, s := range w.AllowSources {
		if s == AllowGitHub {
			continue
		}
		if _, err := ParseSource(s); err != nil {
			bad(fmt.Sprintf("webhook.allow_sources[%d]", i), `want a CIDR like "192.30.252.0/22", an address, or "github", got %q`, s)
		}
	}
	for i, s := range w.TrustedProxies {
		if _, err := ParseSource(s); err != nil {
			bad(fmt.Sprintf("webhook.trusted_proxies[%d]", i), "%v", err)
		}
	}
	if !(w.ClientBodyShare > 0 && w.ClientBodyShare <= 1) {
		bad("webhook.client_body_share", "want a fraction above 0 and at most 1 (1: no share), got %v", w.ClientBodyShare)
	}
	if w.ClientMaxUnverified < 1 {
		bad("webhook.client_max_unverified", "must be at least 1, got %d", w.ClientMaxUnverified)
	}
	if w.PenaltyFailures < 0 {
		bad("webhook.penalty_failures", "must not be negative (0 turns the penalty box off), got %d", w.PenaltyFailures)
	}
	if w.PenaltyWindow <= 0 {
		bad("webhook.penalty_window", "must be positive, got %s", w.PenaltyWindow)
	}
	if w.PenaltyDuration <= 0 {
		bad("webhook.penalty_duration", "must be positive, got %s", w.PenaltyDuration)
	}
	if w.HookRangesRefresh < Duration(time.Minute) {
		bad("webhook.hook_ranges_refresh", "must be at least 1m, got %s", w.HookRangesRefresh)
	}
	return errs
}

// validHook checks a sweep.hooks entry; its syntax is gh.ParseHook's, kept
// here too so that config does not depend on the GitHub adapter.
func validHook(h string) error {
	const want = `want "repo:owner/name#HOOK_ID", "org:owner#HOOK_ID" or "app"`
	if h == "app" {
		return nil
	}
	kind, rest, _ := strings.Cut(h, ":")
	target, id, ok := strings.Cut(rest, "#")
	if n, err := strconv.ParseInt(id, 10, 64); !ok || err != nil || n <= 0 {
		return fmt.Errorf("%s, got %q", want, h)
	}
	owner, name, isRepo := strings.Cut(target, "/")
	switch {
	case kind == "repo" && isRepo && owner != "" && name != "":
	case kind == "org" && !isRepo && owner != "":
	default:
		return fmt.Errorf("%s, got %q", want, h)
	}
	return nil
}

func validateMatch(m string) error {
	if m == "" {
		return errors.New(`must not be empty; want "owner/name" or a glob like "owner/*"`)
	}
	if _, err := path.Match(m, ""); err != nil {
		return fmt.Errorf("bad glob %q: %w", m, err)
	}
	if owner, name, ok := strings.Cut(m, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf(`want "owner/name" or a glob like "owner/*", got %q`, m)
	}
	return nil
}

func (b BudgetConfig) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	amount := func(key string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			bad(key, "want dollars, at least 0 (0: no limit), got %v", v)
		}
	}
	amount("budget.daily", b.Daily)
	amount("budget.monthly", b.Monthly)
	seen := map[string]int{}
	for i, s := range b.Scopes {
		key := fmt.Sprintf("budget.scopes[%d]", i)
		if err := validScope(s.Match); err != nil {
			bad(key+".match", "%v", err)
		}
		if j, ok := seen[strings.ToLower(s.Match)]; ok {
			bad(key+".match", "%q is budget.scopes[%d]'s already: give one scope both limits", s.Match, j)
		}
		seen[strings.ToLower(s.Match)] = i
		amount(key+".daily", s.Daily)
		amount(key+".monthly", s.Monthly)
		if s.Daily == 0 && s.Monthly == 0 {
			bad(key, "set daily, monthly or both")
		}
	}
	switch b.OnLimit {
	case OnLimitDefer, OnLimitSkip:
	case OnLimitFallback:
		if b.FallbackModel == "" {
			bad("budget.fallback_model", "must be set when budget.on_limit is fallback")
		}
	default:
		bad("budget.on_limit", "want defer, fallback or skip, got %q", b.OnLimit)
	}
	for i, t := range b.AlertThresholds {
		if t < 1 || t > 1000 {
			bad(fmt.Sprintf("budget.alert_thresholds[%d]", i), "want a percentage from 1 to 1000, got %d", t)
		}
	}
	if b.AlertWebhook != "" {
		if u, err := url.Parse(b.AlertWebhook.Value()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL is a credential (Slack's carry a token): never echo it.
			bad("budget.alert_webhook", "want an http:// or https:// URL")
		}
	}
	switch b.AlertFormat {
	case "slack", "json":
	default:
		bad("budget.alert_format", "want slack or json, got %q", b.AlertFormat)
	}
	return errs
}

// validScope checks a budget scope: "repo:owner/name", "org:owner" or
// "installation:ID".
func validScope(m string) error {
	const want = `want "repo:owner/name", "org:owner" or "installation:ID"`
	kind, v, _ := strings.Cut(m, ":")
	switch kind {
	case "repo":
		if owner, name, ok := strings.Cut(v, "/"); ok && owner != "" && name != "" && !strings.Contains(name, "/") {
			return nil
		}
	case "org":
		if v != "" && !strings.Contains(v, "/") {
			return nil
		}
	case "installation":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return nil
		}
	}
	return fmt.Errorf("%s, got %q", want, m)
}

func (s RepoSettings) validate(prefix string) []error {
	var errs []error
	if s.QuietPeriod != nil && (*s.QuietPeriod < 0 || *s.QuietPeriod > Duration(time.Hour)) {
		errs = append(errs, fmt.Errorf("%s.quiet_period: want from 0s to 1h, got %s", prefix, *s.QuietPeriod))
	}
	for _, f := range []struct {
		key string
		v   *int
		min int
	}{{"max_analyses_per_thread", s.MaxAnalysesPerThread, 1}, {"max_analyses_per_author", s.MaxAnalysesPerAuthor, 0},
		{"min_content_chars", s.MinContentChars, 0}, {"min_change_chars", s.MinChangeChars, 0}} {
		if f.v != nil && *f.v < f.min {
			errs = append(errs, fmt.Errorf("%s.%s: must be at least %d, got %d", prefix, f.key, f.min, *f.v))
		}
	}
	for _, g := range []struct {
		key   string
		globs []string
	}{{"ignore_paths", s.IgnorePaths}, {"branches", s.Branches}} {
		for i, p := range g.globs {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				errs = append(errs, fmt.Errorf("%s.%s[%d]: want a glob like \"docs/**\" or \"release/*\", got %q", prefix, g.key, i, p))
			}
		}
	}
	supported := SupportedEvents()
	for _, list := range []struct {
		key    string
		events []string
	}{{"events", s.Events}, {"batch_events", s.BatchEvents}} {
		for i, e := range list.events {
			if !eventNameRE.MatchString(e) || !slices.ContainsFunc(supported, func(se string) bool {
				return se == e || strings.HasPrefix(se, e+".")
			}) {
				errs = append(errs, fmt.Errorf("%s.%s[%d]: unsupported event %q; want one of %s (or a bare event name)",
					prefix, list.key, i, e, strings.Join(supported, ", ")))
			}
		}
	}
	for _, list := range []struct {
		key    string
		labels []string
	}{{"label_allowlist", s.LabelAllowlist}, {"outsider_label_allowlist", s.OutsiderLabelAllowlist}} {
		for i, l := range list.labels {
			if strings.TrimSpace(l) == "" {
				errs = append(errs, fmt.Errorf("%s.%s[%d]: must not be empty", prefix, list.key, i))
			}
		}
	}
	for i, a := range s.AuthorLimitExempt {
		if known := authorAssociations(); !slices.Contains(known, a) {
			errs = append(errs, fmt.Errorf("%s.author_limit_exempt[%d]: want one of %s, got %q", prefix, i, strings.Join(known, ", "), a))
		}
	}
	return errs
}

// ValidateForServe is Validate plus the credentials that serving needs:
// webhook secrets, GitHub authentication and an Anthropic API key. Modes
// that run without them (demo, migrate, check-config) call Validate only.
func (c Config) ValidateForServe() error {
	errs := []error{c.Validate()}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.GitHub.WebhookSecrets) == 0 {
		bad("github.webhook_secrets: set GITHUB_WEBHOOK_SECRET")
	}
	gh := c.GitHub
	switch {
	case gh.Token == "" && gh.AppID == 0:
		bad("github: set GITHUB_TOKEN or GITHUB_APP_ID with GITHUB_APP_PRIVATE_KEY")
	case gh.Token != "" && gh.AppID != 0:
		bad("github: set either GITHUB_TOKEN or GITHUB_APP_ID, not both")
	case gh.AppID != 0 && gh.AppPrivateKey == "":
		bad("github.app_private_key: GITHUB_APP_ID is set; set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_FILE")
	case gh.AppID != 0:
		if block, _ := pem.Decode([]byte(gh.AppPrivateKey.Value())); block == nil {
			bad("github.app_private_key: not a PEM-encoded private key")
		}
	}
	if gh.AppID == 0 && gh.AppPrivateKey != "" {
		bad("github.app_id: GITHUB_APP_PRIVATE_KEY is set; set GITHUB_APP_ID too")
	}
	if c.Anthropic.APIKey == "" {
		bad("anthropic.api_key: set ANTHROPIC_API_KEY")
	}
	errs = append(errs, gh.allowlistForServe())
	return errors.Join(errs...)
}

// UsesPostgres reports whether DatabaseURL selects PostgreSQL rather than a
// SQLite file.
func (c Config) UsesPostgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// For resolves the settings of repo ("owner/name"): the built-in defaults,
// then Defaults, then the first rule that matches, field by field. Matching
// ignores case, as GitHub does.
func (c Config) For(repo string) Settings {
	s := defaultRepoSettings().merge(c.Defaults)
	repo = strings.ToLower(repo)
	for _, r := range c.Repositories {
		if ok, _ := path.Match(strings.ToLower(r.Match), repo); ok {
			s = s.merge(r.RepoSettings)
			break
		}
	}
	model := s.Model
	if model == "" {
		model = c.Anthropic.Model
	}
	return Settings{
		Events:           slices.Clone(s.Events),
		BatchEvents:      slices.Clone(s.BatchEvents),
		PostComments:     *s.PostComments,
		ApplyLabels:      *s.ApplyLabels,
		LabelAllowlist:   slices.Clone(s.LabelAllowlist),
		OutsiderLabels:   slices.Clone(s.OutsiderLabelAllowlist),
		AutoCloseInvalid: *s.AutoCloseInvalid,
		ReviewDrafts:     *s.ReviewDrafts,
		Model:            model,
		QuietPeriod:      time.Duration(*s.QuietPeriod),
		MaxAnalyses:      *s.MaxAnalysesPerThread,
		MaxPerAuthor:     *s.MaxAnalysesPerAuthor,
		AuthorExempt:     slices.Clone(s.AuthorLimitExempt),
		MinContentChars:  *s.MinContentChars,
		MinChangeChars:   *s.MinChangeChars,
		IgnoreLabels:     slices.Clone(s.IgnoreLabels),
		IgnoreAuthors:    slices.Clone(s.IgnoreAuthors),
		IgnorePaths:      slices.Clone(s.IgnorePaths),
		Branches:         slices.Clone(s.Branches),
		Context:          s.Context,
	}
}

// merge returns s with every field set in o replacing its own.
func (s RepoSettings) merge(o RepoSettings) RepoSettings {
	inherit(&s.Events, o.Events, o.Events != nil)
	inherit(&s.BatchEvents, o.BatchEvents, o.BatchEvents != nil)
	inherit(&s.PostComments, o.PostComments, o.PostComments != nil)
	inherit(&s.ApplyLabels, o.ApplyLabels, o.ApplyLabels != nil)
	inherit(&s.LabelAllowlist, o.LabelAllowlist, o.LabelAllowlist != nil)
	inherit(&s.OutsiderLabelAllowlist, o.OutsiderLabelAllowlist, o.OutsiderLabelAllowlist != nil)
	inherit(&s.AutoCloseInvalid, o.AutoCloseInvalid, o.AutoCloseInvalid != nil)
	inherit(&s.ReviewDrafts, o.ReviewDrafts, o.ReviewDrafts != nil)
	inherit(&s.Model, o.Model, o.Model != "")
	inherit(&s.QuietPeriod, o.QuietPeriod, o.QuietPeriod != nil)
	inherit(&s.MaxAnalysesPerThread, o.MaxAnalysesPerThread, o.MaxAnalysesPerThread != nil)
	inherit(&s.MaxAnalysesPerAuthor, o.MaxAnalysesPerAuthor, o.MaxAnalysesPerAuthor != nil)
	inherit(&s.AuthorLimitExempt, o.AuthorLimitExempt, o.AuthorLimitExempt != nil)
	inherit(&s.MinContentChars, o.MinContentChars, o.MinContentChars != nil)
	inherit(&s.MinChangeChars, o.MinChangeChars, o.MinChangeChars != nil)
	inherit(&s.IgnoreLabels, o.IgnoreLabels, o.IgnoreLabels != nil)
	inherit(&s.IgnoreAuthors, o.IgnoreAuthors, o.IgnoreAuthors != nil)
	inherit(&s.IgnorePaths, o.IgnorePaths, o.IgnorePaths != nil)
	inherit(&s.Branches, o.Branches, o.Branches != nil)
	inherit(&s.Context, o.Context, o.Context != "")
	return s
}

// inherit sets *dst to v where the overriding settings set it.
func inherit[T any](dst *T, v T, set bool) {
	if set {
		*dst = v
	}
}

// Enabled reports whether hookwise handles event with action here, either
// listed as "event.action" or as the bare event name.
func (s Settings) Enabled(event, action string) bool {
	return slices.Contains(s.Events, event) || slices.Contains(s.Events, event+"."+action)
}

// Batched reports whether event with action is answered through the
// Message Batches API here (listed in BatchEvents like in Events).
func (s Settings) Batched(event, action string) bool {
	return slices.Contains(s.BatchEvents, event) || slices.Contains(s.BatchEvents, event+"."+action)
}

// Redacted returns the effective configuration as YAML with every secret
// shown as "[redacted]", or "" where unset, and the passwords of URLs
// redacted (see RedactURL).
func (c Config) Redacted() string {
	c.DatabaseURL = RedactURL(c.DatabaseURL)
	c.GitHub.APIURL = RedactURL(c.GitHub.APIURL)
	c.Anthropic.BaseURL = RedactURL(c.Anthropic.BaseURL)
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		// Only custom marshalers could fail, and ours do not.
		return fmt.Sprintf("# cannot render config: %v\n", err)
	}
	_ = enc.Close()
	return b.String()
}

// Secret is a string that does not print: every formatting and encoding
// path shows "[redacted]" (or "" when unset). Value returns the real value.
type Secret string

const redacted = "[redacted]"

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// LogValue keeps slog handlers from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText implements encoding.TextMarshaler, used by encoders that
// prefer it (and by map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Duration is a time.Duration written in YAML as "30s" or "5m".
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML implements yaml.Unmarshaler. It returns a *yaml.TypeError
// so that decodeYAML can name the key.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{
			fmt.Sprintf("line %d: want a duration like \"30s\" or \"5m\", got %q", n.Line, n.Value),
		}}
	}
	*d = Duration(v)
	return nil
}
