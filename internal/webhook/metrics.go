package webhook

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	batch      prometheus.Histogram
	refused    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, cs *clients, allow *Allowlist) metrics {
	m := metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_webhook_deliveries_total",
			Help: "Webhook requests by event and outcome (accepted, duplicate, pong, or the HTTP status text of a rejection).",
		}, []string{"event", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookwise_webhook_ingest_seconds",
			Help:    "Time from request to answer on POST /webhook, including the commit.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookwise_webhook_commit_batch_size",
			Help:    "Deliveries committed together by the group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_webhook_refused_total",
			Help: "Webhook requests answered 403 or 429, by reason: source (not allowed, 403), penalty (client in the penalty box), busy (client has too many requests being read), client_memory (its share of body memory is held), memory (all body memory is held), queue (more deliveries wait to be stored than the store keeps up with).",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.deliveries, m.latency, m.batch, m.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hookwise_webhook_clients",
			Help: "Client addresses tracked by the webhook's fairness (with requests in flight, strikes or a penalty).",
		}, func() float64 { return float64(cs.size()) }))
	if allow != nil && allow.FollowsGitHub() {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hookwise_webhook_github_hook_ranges",
			Help: "GitHub hook address ranges in the webhook allowlist (0: not loaded yet, every source is admitted).",
		}, func() float64 { return float64(allow.hookRanges()) }))
	}
	return m
}

// knownEvents bounds the event label: GitHub's event names, anything else
// becomes "other" so a sender cannot grow the metric without limit.
var knownEvents = map[string]bool{}

func init() {
	for _, e := range []string{"branch_protection_rule", "check_run", "check_suite", "code_scanning_alert",
		"commit_comment", "create", "delete", "dependabot_alert", "deploy_key", "deployment", "deployment_status",
		"discussion", "discussion_comment", "fork", "github_app_authorization", "gollum", "installation",
		"installation_repositories", "installation_target", "issue_comment", "issues", "label", "marketplace_purchase",
		"member", "membership", "merge_group", "meta", "milestone", "org_block", "organization", "package", "page_build",
		"ping", "project", "project_card", "project_column", "projects_v2", "projects_v2_item", "public", "pull_request",
		"pull_request_review", "pull_request_review_comment", "pull_request_review_thread", "push", "registry_package",
		"release", "repository", "repository_dispatch", "repository_import", "repository_vulnerability_alert",
		"secret_scanning_alert", "secret_scanning_alert_location", "security_advisory", "security_and_analysis",
		"sponsorship", "star", "status", "team", "team_add", "watch", "workflow_dispatch", "workflow_job", "workflow_run"} {
		knownEvents[e] = true
	}
}

func metricEvent(e string) string {
	if knownEvents[e] {
		return e
	}
	return "other"
}
