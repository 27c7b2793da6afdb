package pace

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are a Transport's collectors. The gauges are read from States
// at scrape time, so a key or bucket that goes away needs no clean-up.
type metrics struct {
	t          *Transport
	remaining  *prometheus.Desc
	reset      *prometheus.Desc
	open       *prometheus.Desc
	backlog    *prometheus.Desc
	drain      *prometheus.Desc
	openedVec  *prometheus.CounterVec
	waitSecond prometheus.Histogram
}

func newMetrics(t *Transport, reg prometheus.Registerer) *metrics {
	up := prometheus.Labels{"upstream": t.opts.Upstream}
	m := &metrics{
		t: t,
		remaining: prometheus.NewDesc("hookwise_ratelimit_remaining",
			"Estimated requests or tokens left in an upstream rate-limit bucket.", []string{"key", "bucket"}, up),
		reset: prometheus.NewDesc("hookwise_ratelimit_reset_seconds",
			"Seconds until an upstream rate-limit bucket is full again.", []string{"key", "bucket"}, up),
		open: prometheus.NewDesc("hookwise_circuit_open",
			"1 while the circuit breaker of an upstream key is open or half-open.", []string{"key"}, up),
		backlog: prometheus.NewDesc("hookwise_write_backlog",
			"Writes waiting for a credential's write window: promised to running jobs, and needed by jobs waiting their turn.", []string{"key"}, up),
		drain: prometheus.NewDesc("hookwise_write_drain_seconds",
			"Seconds until the write window lets the last write of the backlog start.", []string{"key"}, up),
		openedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookwise_circuit_opened_total", Help: "Times a circuit breaker opened after consecutive failures.",
			ConstLabels: up,
		}, []string{"key"}),
		waitSecond: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hookwise_pace_wait_seconds", Help: "Time a request waited for pacing before it was sent.",
			ConstLabels: up,
			Buckets:     []float64{0, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
	}
	reg.MustRegister(m, m.openedVec, m.waitSecond)
	return m
}

// Describe implements prometheus.Collector for the gauges.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.remaining
	ch <- m.reset
	ch <- m.open
	ch <- m.backlog
	ch <- m.drain
}

// Collect implements prometheus.Collector for the gauges.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	now := m.t.opts.Now()
	for _, s := range m.t.States() {
		for _, b := range s.Buckets {
			ch <- prometheus.MustNewConstMetric(m.remaining, prometheus.GaugeValue, float64(b.Remaining), s.Key, b.Name)
			var reset float64
			if !b.Reset.IsZero() {
				reset = max(b.Reset.Sub(now).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(m.reset, prometheus.GaugeValue, reset, s.Key, b.Name)
		}
		var open float64
		if s.CircuitOpen {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(m.open, prometheus.GaugeValue, open, s.Key)
	}
	for _, b := range m.t.Backlogs() {
		ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(b.Writes), b.Key)
		ch <- prometheus.MustNewConstMetric(m.drain, prometheus.GaugeValue, b.DrainIn.Seconds(), b.Key)
	}
}

func (m *metrics) observeWait(d time.Duration) {
	if m != nil {
		m.waitSecond.Observe(d.Seconds())
	}
}

func (m *metrics) opened(key string) {
	if m != nil {
		m.openedVec.WithLabelValues(key).Inc()
	}
}
