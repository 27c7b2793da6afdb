package main

import (
	"context"
	"path/filepath"
	"testing"
)

func TestComposeAcceptsTheRepositorysFiles(t *testing.T) {
	p, found := checkCompose(context.Background(), filepath.Join(deployDir, "compose.yaml"), filepath.Join(deployDir, ".env.example"))
	wantNoProblems(t, found)
	if p == nil || len(p.Services) != 6 {
		t.Fatalf("checkCompose loaded %v, want the project's 6 services", p)
	}
	if got := *p.Services["hookwise"].Environment["GITHUB_TOKEN"]; got != "REPLACE-ME-github-token" {
		t.Errorf("hookwise's GITHUB_TOKEN = %q, want the env file's placeholder", got)
	}
}

func TestComposeFindsBrokenFiles(t *testing.T) {
	const password = "REPLACE-ME-postgres-password"
	tests := []struct {
		name     string
		file     string // in deploy/
		old, new string
		want     string
	}{
		{"not YAML", "compose.yaml", `command: ["serve"]`, `command: ["serve"`,
			"compose.yaml does not load as Docker Compose would"},
		{"against the schema", "compose.yaml", "replicas: 3", "replicas: three",
			"compose.yaml does not load as Docker Compose would"},
		{"an unknown key", "compose.yaml", "stop_grace_period: 75s", "stop_grace_period: 75s\n    restart_policy: always",
			"restart_policy"},
		{"an interpolated variable the env file lacks", ".env.example", "POSTGRES_PASSWORD=" + password + "\n", "",
			"set POSTGRES_PASSWORD in deploy/.env"},
		{"a published replica", "compose.yaml", "    expose:\n", "    ports:\n      - \"8080:8080\"\n    expose:\n",
			"hookwise publishes ports; only nginx should"},
		{"a secret the env file lacks", ".env.example", "GITHUB_TOKEN=REPLACE-ME-github-token", "GITHUB_TOKEN=",
			"hookwise: GITHUB_TOKEN is not set by the env file"},
		{"a database URL with another password", ".env.example", "hookwise:" + password + "@postgres", "hookwise:other@postgres",
			"migrate: HOOKWISE_DATABASE_URL does not use POSTGRES_PASSWORD"},
		{"a SQLite database", ".env.example", "HOOKWISE_DATABASE_URL=postgres://hookwise:" + password + "@postgres:5432/hookwise?sslmode=disable",
			"HOOKWISE_DATABASE_URL=/data/hookwise.db", "hookwise: HOOKWISE_DATABASE_URL must be a postgres:// URL"},
		{"metrics on the webhook's port", "compose.yaml", `HOOKWISE_METRICS_LISTEN: ":9090"`, `HOOKWISE_METRICS_LISTEN: ":9091"`,
			`HOOKWISE_METRICS_LISTEN must be ":9090"`},
		{"migrate not waited for", "compose.yaml", "      migrate:\n        condition: service_completed_successfully\n", "",
			"hookwise must depend on migrate completing"},
		{"nginx naming another service", "nginx.conf", "server hookwise:9090 resolve;", "server app:9090 resolve;",
			`nginx.conf: want "server hookwise:9090 resolve;"`},
		{"alerts not mounted", "compose.yaml", "      - ./alerts.yml:/etc/prometheus/alerts.yml:ro\n", "",
			"nothing mounts alerts.yml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDeploy(t)
			edit(t, filepath.Join(dir, tt.file), tt.old, tt.new)
			_, found := checkCompose(context.Background(), filepath.Join(dir, "compose.yaml"), filepath.Join(dir, ".env.example"))
			wantProblem(t, found, tt.want)
			wantNotShown(t, found, password)
		})
	}
}
