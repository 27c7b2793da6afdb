package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// dashboardUID is the uid compose.yaml's Grafana opens on.
const dashboardUID = "hookwise"

func dashboardCommand(_ context.Context, args []string, stdout io.Writer) (problems, error) {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	datasources := fs.String("datasources", "", "Grafana's datasource provisioning file")
	rulesOut := fs.String("rules-out", "", "write the dashboard's queries here as Prometheus recording rules")
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return nil, err
	}
	if err := requireFlags(fs, "datasources"); err != nil {
		return nil, err
	}
	dash, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return nil, err
	}
	prov, err := os.ReadFile(*datasources)
	if err != nil {
		return nil, err
	}
	queries, found := checkDashboard(filepath.Base(fs.Arg(0)), dash, prov)
	if *rulesOut != "" && len(queries) > 0 {
		rules, err := queryRules(queries)
		if err == nil {
			err = os.WriteFile(*rulesOut, rules, 0o644)
		}
		if err != nil {
			found.add("write the dashboard's queries as rules: %v", err)
		}
	}
	if len(found) == 0 {
		fmt.Fprintf(stdout, "%s: %d queries, all on the provisioned datasource\n", filepath.Base(fs.Arg(0)), len(queries))
	}
	return found, nil
}

// panel is the part of a Grafana panel the checks read. A row holds its
// collapsed panels in Panels.
type panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	UID string `json:"uid"`
}

// checkDashboard checks the dashboard JSON against the datasource
// provisioning YAML: its uid, and every panel on the provisioned
// Prometheus with a query. It returns the queries, for promtool to parse.
func checkDashboard(name string, dash, provisioning []byte) ([]string, problems) {
	var found problems
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(dash, &d); err != nil {
		return nil, problems{fmt.Sprintf("%s is not valid JSON: %v", name, err)}
	}
	if d.UID != dashboardUID {
		found.add("%s: uid is %q, want %q (compose.yaml's Grafana opens on it)", name, d.UID, dashboardUID)
	}
	if len(d.Panels) == 0 {
		found.add("%s: no panels", name)
	}
	uid, err := prometheusUID(provisioning)
	if err != nil {
		found.add("%v", err)
		return nil, found
	}
	var queries []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			queries = append(queries, checkPanel(name, p, uid, &found)...)
		}
	}
	walk(d.Panels)
	return queries, found
}

// checkPanel: the panel and each of its queries use the provisioned
// datasource, and it has at least one query.
func checkPanel(name string, p panel, uid string, found *problems) []string {
	if p.Datasource == nil || p.Datasource.UID != uid {
		found.add("%s: panel %q: datasource uid is not the provisioned %q", name, p.Title, uid)
	}
	if len(p.Targets) == 0 {
		found.add("%s: panel %q has no query", name, p.Title)
	}
	var queries []string
	for i, t := range p.Targets {
		if t.Datasource != nil && t.Datasource.UID != uid {
			found.add("%s: panel %q, query %d: datasource uid is not the provisioned %q", name, p.Title, i+1, uid)
		}
		if t.Expr == "" {
			found.add("%s: panel %q, query %d: empty expr", name, p.Title, i+1)
			continue
		}
		queries = append(queries, t.Expr)
	}
	return queries
}

// prometheusUID returns the uid of the Prometheus datasource Grafana is
// provisioned with.
func prometheusUID(provisioning []byte) (string, error) {
	var p struct {
		Datasources []struct {
			Type string `json:"type"`
			UID  string `json:"uid"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(provisioning, &p); err != nil {
		return "", fmt.Errorf("datasource provisioning: %v", err)
	}
	for _, ds := range p.Datasources {
		if ds.Type == "prometheus" && ds.UID != "" {
			return ds.UID, nil
		}
	}
	return "", fmt.Errorf("datasource provisioning: no datasource of type prometheus with a uid")
}

// queryRules renders queries as a Prometheus rule file, one recording rule
// each, so that `promtool check rules` parses them: a PromQL mistake then
// fails validation rather than showing as an empty panel. The queries are
// marshalled, never spliced into the YAML.
func queryRules(queries []string) ([]byte, error) {
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	type group struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	}
	g := group{Name: "dashboard"}
	for i, q := range queries {
		g.Rules = append(g.Rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: q})
	}
	return yaml.Marshal(struct {
		Groups []group `json:"groups"`
	}{[]group{g}})
}
