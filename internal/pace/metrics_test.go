package pace_test

import (
	"maps"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwise/hookwise/internal/pace"
)

// gathered returns the value of the series name{labels} in reg: a gauge's
// or counter's value, a histogram's sample count; NaN when absent.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := make(map[string]string)
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if !maps.Equal(got, labels) {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return math.NaN()
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	clock := newClock()
	reg := prometheus.NewRegistry()
	anthropic := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("anthropic-ratelimit-requests-limit", "50")
		h.Set("anthropic-ratelimit-requests-remaining", "49")
		h.Set("anthropic-ratelimit-requests-reset", clock.Now().Add(60500*time.Millisecond).Format(time.RFC3339Nano))
	})
	github := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-RateLimit-Limit", "5000")
		h.Set("X-RateLimit-Remaining", "4999")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(epoch.Add(30*time.Second).Unix(), 10))
		h.Set("X-RateLimit-Resource", "core")
	})
	// Two transports on one registry, as in production.
	at := newTransport(t, clock, pace.Options{Upstream: pace.Anthropic, Registerer: reg})
	gt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, Registerer: reg, WritesPerMinute: 80})
	mustSend(t, at, "sonnet", http.MethodPost, anthropic.URL+"/v1/messages")
	for range 5 {
		mustSend(t, at, "haiku", http.MethodPost, anthropic.URL+"/down")
	}
	mustSend(t, gt, "installation-42", http.MethodPost, github.URL+"/repos/o/r/issues")

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"hookwise_ratelimit_remaining", map[string]string{"upstream": "anthropic", "key": "sonnet", "bucket": "requests"}, 49},
		{"hookwise_ratelimit_reset_seconds", map[string]string{"upstream": "anthropic", "key": "sonnet", "bucket": "requests"}, 60.5},
		{"hookwise_ratelimit_remaining", map[string]string{"upstream": "github", "key": "installation-42", "bucket": "core"}, 4999},
		{"hookwise_ratelimit_reset_seconds", map[string]string{"upstream": "github", "key": "installation-42", "bucket": "core"}, 30},
		{"hookwise_ratelimit_remaining", map[string]string{"upstream": "github", "key": "installation-42", "bucket": "writes-minute"}, 79},
		{"hookwise_ratelimit_reset_seconds", map[string]string{"upstream": "github", "key": "installation-42", "bucket": "writes-minute"}, 60},
		{"hookwise_circuit_open", map[string]string{"upstream": "anthropic", "key": "sonnet"}, 0},
		{"hookwise_circuit_open", map[string]string{"upstream": "anthropic", "key": "haiku"}, 1},
		{"hookwise_circuit_open", map[string]string{"upstream": "github", "key": "installation-42"}, 0},
		{"hookwise_circuit_opened_total", map[string]string{"upstream": "anthropic", "key": "haiku"}, 1},
		{"hookwise_pace_wait_seconds", map[string]string{"upstream": "anthropic"}, 6},
		{"hookwise_pace_wait_seconds", map[string]string{"upstream": "github"}, 1},
	}
	for _, tc := range tests {
		if got := gathered(t, reg, tc.name, tc.labels); math.Abs(got-tc.want) > 1e-6 || math.IsNaN(got) {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}

	// Time passes: the reset gauges count down, never below 0.
	clock.Advance(45 * time.Second)
	if got := gathered(t, reg, "hookwise_ratelimit_reset_seconds", map[string]string{"upstream": "github", "key": "installation-42", "bucket": "core"}); got != 0 {
		t.Errorf("reset seconds after the reset = %v, want 0", got)
	}
	if got := gathered(t, reg, "hookwise_ratelimit_remaining", map[string]string{"upstream": "github", "key": "installation-42", "bucket": "core"}); got != 5000 {
		t.Errorf("remaining after the reset = %v, want 5000", got)
	}
}
