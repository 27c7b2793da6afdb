package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMetricsTheRepositorysAlertsAndDashboardNameAreDefined(t *testing.T) {
	defined, err := definedMetrics("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := defined["hookwise_webhook_deliveries_total"]; !ok {
		t.Fatalf("definedMetrics(repository) = %v, want hookwise_webhook_deliveries_total among them", defined)
	}
	for _, f := range []string{"alerts.yml", "grafana/dashboards/hookwise.json"} {
		named, err := namedMetrics(filepath.Join(deployDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(named) == 0 {
			t.Errorf("namedMetrics(%s) found none", f)
		}
		wantNoProblems(t, undefinedMetrics(f, named, defined))
	}
}

func TestMetricsAnAlertOnAMetricHookwiseDoesNotExport(t *testing.T) {
	dir := copyDeploy(t)
	alerts := filepath.Join(dir, "alerts.yml")
	edit(t, alerts, "(hookwise_write_drain_seconds)", "(hookwise_write_drain_time_seconds)")
	defined, err := definedMetrics("../..")
	if err != nil {
		t.Fatal(err)
	}
	named, err := namedMetrics(alerts)
	if err != nil {
		t.Fatal(err)
	}
	found := undefinedMetrics("alerts.yml", named, defined)
	if len(found) != 1 {
		t.Fatalf("undefinedMetrics = %q, want one problem", found)
	}
	wantProblem(t, found, "alerts.yml names hookwise_write_drain_time_seconds, which hookwise does not export")
}

// A fake source tree: only names given to client_golang count as defined,
// not the same words in a comment, a log message or a test.
func TestMetricsDefinedOnlyWhereClientGolangIsGivenTheName(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "internal/x/metrics.go"), `package x

import "github.com/prometheus/client_golang/prometheus"

// hookwise_in_comment_total is only mentioned here.
var (
	a = prometheus.NewCounter(prometheus.CounterOpts{Name: "hookwise_a_total", Help: "hookwise_in_help_total"})
	h = prometheus.NewHistogram(prometheus.HistogramOpts{Help: "latency", Name: "hookwise_h_seconds"})
	d = prometheus.NewDesc("hookwise_d", "help", nil, nil)
	logged = "hookwise_logged_total"
)
`)
	writeFile(t, filepath.Join(src, "cmd/y/main.go"), `package main

import "github.com/prometheus/client_golang/prometheus"

var g = prometheus.GaugeOpts{Name: "hookwise_cmd_gauge"}
`)
	writeFile(t, filepath.Join(src, "internal/x/metrics_test.go"), `package x

var t = prometheus.CounterOpts{Name: "hookwise_test_only_total"}
`)
	writeFile(t, filepath.Join(src, "internal/x/testdata/broken.go"), `package x; this is not Go; "hookwise_testdata_total"`)
	writeFile(t, filepath.Join(src, "rules.yml"), `# hookwise_commented_total is not a use
groups:
  - name: g
    rules:
      - alert: A
        expr: rate(hookwise_a_total[5m]) > 0 and histogram_quantile(0.9, hookwise_h_seconds_bucket) > 1
      - alert: B
        expr: hookwise_d + hookwise_h_seconds_count + hookwise_cmd_gauge
      - alert: C
        expr: hookwise_in_comment_total + hookwise_in_help_total + hookwise_logged_total + hookwise_test_only_total
        annotations:
          summary: "see hookwise_nowhere_total; not_hookwise_x is not ours"
`)
	defined, err := definedMetrics(src)
	if err != nil {
		t.Fatal(err)
	}
	named, err := namedMetrics(filepath.Join(src, "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var undefined []string
	for _, p := range undefinedMetrics("rules.yml", named, defined) {
		undefined = append(undefined, strings.Fields(p)[2])
	}
	want := []string{"hookwise_in_comment_total,", "hookwise_in_help_total,", "hookwise_logged_total,", "hookwise_nowhere_total,", "hookwise_test_only_total,"}
	if !slices.Equal(undefined, want) {
		t.Errorf("undefined metrics = %q, want %q", undefined, want)
	}
}

func TestMetricsBadInput(t *testing.T) {
	t.Run("a rule file that is not YAML", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "alerts.yml")
		writeFile(t, f, "groups: [\n")
		if _, err := namedMetrics(f); err == nil || !strings.Contains(err.Error(), "alerts.yml") {
			t.Errorf("namedMetrics(not YAML) = %v, want an error naming alerts.yml", err)
		}
	})
	t.Run("Go that does not parse", func(t *testing.T) {
		src := t.TempDir()
		writeFile(t, filepath.Join(src, "internal/x/x.go"), "package x\nfunc {")
		if _, err := definedMetrics(src); err == nil || !strings.Contains(err.Error(), "x.go") {
			t.Errorf("definedMetrics(broken Go) = %v, want an error naming x.go", err)
		}
	})
	t.Run("no source tree", func(t *testing.T) {
		if _, err := definedMetrics(filepath.Join(t.TempDir(), "none")); err == nil {
			t.Error("definedMetrics(no tree) = nil error, want one")
		}
	})
}
