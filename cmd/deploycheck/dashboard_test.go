package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	dashboardFile   = "grafana/dashboards/hookwise.json"
	datasourcesFile = "grafana/provisioning/datasources/prometheus.yaml"
)

// readDashboard returns the dashboard and datasource provisioning in dir.
func readDashboard(t *testing.T, dir string) (dash, prov []byte) {
	t.Helper()
	dash, err := os.ReadFile(filepath.Join(dir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	prov, err = os.ReadFile(filepath.Join(dir, datasourcesFile))
	if err != nil {
		t.Fatal(err)
	}
	return dash, prov
}

func TestDashboardAcceptsTheRepositorysDashboard(t *testing.T) {
	dash, prov := readDashboard(t, deployDir)
	queries, found := checkDashboard("hookwise.json", dash, prov)
	wantNoProblems(t, found)
	if !slices.Contains(queries, "sum by (outcome) (rate(hookwise_webhook_deliveries_total[5m]))") {
		t.Errorf("queries = %q, want the webhook panel's among them", queries)
	}
}

func TestDashboardFindsBrokenDashboards(t *testing.T) {
	tests := []struct {
		name     string
		file     string // in deploy/
		old, new string
		want     string
	}{
		{"not JSON", dashboardFile, `"uid": "hookwise"`, `"uid": "hookwise",,`, "hookwise.json is not valid JSON"},
		{"another uid", dashboardFile, `"uid": "hookwise"`, `"uid": "hookwise-v2"`, `uid is "hookwise-v2", want "hookwise"`},
		{"a panel on another datasource", dashboardFile,
			`"title": "Webhook deliveries by outcome", "description": "What POST /webhook answered, per second, across replicas: accepted, duplicate, pong, or the refusal.", "datasource": { "type": "prometheus", "uid": "prometheus" }`,
			`"title": "Webhook deliveries by outcome", "description": "What POST /webhook answered, per second, across replicas: accepted, duplicate, pong, or the refusal.", "datasource": { "type": "prometheus", "uid": "victoria" }`,
			`panel "Webhook deliveries by outcome": datasource uid is not the provisioned "prometheus"`},
		{"a query on another datasource", dashboardFile,
			`"refId": "A", "datasource": { "type": "prometheus", "uid": "prometheus" }, "expr": "sum by (outcome) (rate(hookwise_webhook_deliveries_total[5m]))"`,
			`"refId": "A", "datasource": { "type": "prometheus", "uid": "victoria" }, "expr": "sum by (outcome) (rate(hookwise_webhook_deliveries_total[5m]))"`,
			`panel "Webhook deliveries by outcome", query 1: datasource uid is not the provisioned "prometheus"`},
		{"an empty query", dashboardFile, `"expr": "sum by (outcome) (rate(hookwise_webhook_deliveries_total[5m]))"`, `"expr": ""`,
			`panel "Webhook deliveries by outcome", query 1: empty expr`},
		{"the datasource provisioned under another uid", datasourcesFile, "uid: prometheus", "uid: prom",
			`panel "Webhook deliveries by outcome": datasource uid is not the provisioned "prom"`},
		{"no Prometheus provisioned", datasourcesFile, "type: prometheus", "type: loki",
			"datasource provisioning: no datasource of type prometheus with a uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDeploy(t)
			reformatDashboard(t, dir)
			edit(t, filepath.Join(dir, tt.file), tt.old, tt.new)
			dash, prov := readDashboard(t, dir)
			_, found := checkDashboard("hookwise.json", dash, prov)
			wantProblem(t, found, tt.want)
		})
	}
}

// reformatDashboard collapses the whitespace of the copy's dashboard to
// single spaces, so that an edit can name one panel by the text around it.
func reformatDashboard(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, dashboardFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, strings.Join(strings.Fields(string(b)), " "))
}

func TestDashboardWalksIntoRows(t *testing.T) {
	dash := []byte(`{"uid": "hookwise", "panels": [
		{"type": "row", "title": "Upstreams", "panels": [
			{"type": "timeseries", "title": "Nested", "datasource": {"uid": "elsewhere"}, "targets": []}
		]}
	]}`)
	prov := []byte("datasources:\n  - type: prometheus\n    uid: prometheus\n")
	_, found := checkDashboard("d.json", dash, prov)
	wantProblem(t, found, `panel "Nested": datasource uid is not the provisioned "prometheus"`)
	wantProblem(t, found, `panel "Nested" has no query`)
}

// A query is outside text to the rule file: quotes, newlines, colons and
// hashes must come back from the YAML unchanged.
func TestQueryRulesKeepHostileQueriesIntact(t *testing.T) {
	queries := []string{
		`sum(rate(hookwise_jobs{state="a\"b"}[5m]))`,
		"up # not a comment\n- record: injected\n  expr: vector(1)",
		`"quoted": {x} [y] 'z' & * ! | > %`,
	}
	b, err := queryRules(queries)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &got); err != nil {
		t.Fatalf("the rule file does not parse: %v\n%s", err, b)
	}
	if len(got.Groups) != 1 || len(got.Groups[0].Rules) != len(queries) {
		t.Fatalf("rule file = %s, want one group of %d rules", b, len(queries))
	}
	for i, r := range got.Groups[0].Rules {
		if r.Expr != queries[i] {
			t.Errorf("rule %d expr = %q, want %q", i, r.Expr, queries[i])
		}
		if want := "dashboard:query_" + string(rune('0'+i)); r.Record != want {
			t.Errorf("rule %d record = %q, want %q", i, r.Record, want)
		}
	}
}
