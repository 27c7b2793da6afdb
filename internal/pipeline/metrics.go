package pipeline

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwise/hookwise/internal/claude"
)

// Metrics are the pipeline's Prometheus collectors.
type Metrics struct {
	outcomes *prometheus.CounterVec
	calls    *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	callTime prometheus.Histogram
	comments prometheus.Counter
	skipped  *prometheus.CounterVec
	cost     *prometheus.CounterVec
	refusals *prometheus.CounterVec
	alerts   *prometheus.CounterVec
}

// NewMetrics registers the pipeline's collectors on reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_deliveries_processed_total", Help: "Deliveries processed, by event and outcome (done, skipped, deferred, batched, failed).",
		}, []string{"event", "outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_model_calls_total", Help: "Model calls by model and result (ok or the error type).",
		}, []string{"model", "result"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_model_tokens_total", Help: "Tokens billed by model and kind (input, output, cache_write, cache_read).",
		}, []string{"model", "kind"}),
		callTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookwise_model_call_seconds", Help: "Latency of model calls.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 10),
		}),
		comments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookwise_github_comments_posted_total", Help: "New comments posted on GitHub.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_deliveries_skipped_total", Help: "Deliveries that got no model call, by reason (bot, low_content, coalesced, ...).",
		}, []string{"reason"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_model_cost_dollars_total", Help: "What model calls cost, by model and event, at the configured prices.",
		}, []string{"model", "event"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_budget_refusals_total", Help: "Model calls a budget refused, by budget scope.",
		}, []string{"scope"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_budget_alerts_total", Help: "Budget alerts fired, by threshold (percent).",
		}, []string{"threshold"}),
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.calls, m.tokens, m.callTime, m.comments, m.skipped, m.cost, m.refusals, m.alerts)
	}
	return m
}

func (m *Metrics) outcome(event, outcome string) { m.outcomes.WithLabelValues(event, outcome).Inc() }

func (m *Metrics) modelCall(model string, res claude.Result, err error) {
	m.countCall(model, res, err)
	m.callTime.Observe(res.Latency.Seconds())
}

// batchCall counts a batched request; its latency, the batch's, is not a
// call's.
func (m *Metrics) batchCall(model string, res claude.Result, err error) { m.countCall(model, res, err) }

func (m *Metrics) countCall(model string, res claude.Result, err error) {
	result := "ok"
	if err != nil {
		result = "error"
		var ce *claude.Error
		if errors.As(err, &ce) {
			result = ce.Type
		}
	}
	m.calls.WithLabelValues(model, result).Inc()
	m.tokens.WithLabelValues(model, "input").Add(float64(res.Usage.InputTokens))
	m.tokens.WithLabelValues(model, "output").Add(float64(res.Usage.OutputTokens))
	m.tokens.WithLabelValues(model, "cache_write").Add(float64(res.Usage.CacheCreationInputTokens))
	m.tokens.WithLabelValues(model, "cache_read").Add(float64(res.Usage.CacheReadInputTokens))
}
