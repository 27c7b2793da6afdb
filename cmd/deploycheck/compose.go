package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The settings every hookwise container needs from the env file.
var requiredSecrets = []string{"GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "ANTHROPIC_API_KEY", "HOOKWISE_ADMIN_TOKEN", "HOOKWISE_DATABASE_URL"}

func composeCommand(ctx context.Context, args []string, stdout io.Writer) (problems, error) {
	fs := flag.NewFlagSet("compose", flag.ContinueOnError)
	envFile := fs.String("env-file", "", "the env file, for interpolation and as the hookwise containers' env_file")
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return nil, err
	}
	if err := requireFlags(fs, "env-file"); err != nil {
		return nil, err
	}
	p, found := checkCompose(ctx, fs.Arg(0), *envFile)
	if p != nil && len(found) == 0 {
		fmt.Fprintf(stdout, "compose: %d services: %s\n", len(p.Services), strings.Join(slices.Sorted(maps.Keys(p.Services)), ", "))
	}
	return found, nil
}

// checkCompose loads file as `docker compose --env-file ENV -f FILE config`
// does, with the hookwise containers' env_file pointed at envFile too
// (compose.yaml reads it from HOOKWISE_ENV_FILE), and checks what the
// deployment relies on. The project is nil when the file does not load.
func checkCompose(ctx context.Context, file, envFile string) (*types.Project, problems) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv([]string{"HOOKWISE_ENV_FILE=" + filepath.Base(envFile)}),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
	)
	if err != nil {
		return nil, problems{fmt.Sprintf("%s: %v", filepath.Base(file), err)}
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, problems{fmt.Sprintf("%s does not load as Docker Compose would: %v", filepath.Base(file), err)}
	}
	var found problems
	checkComposeServices(p, &found)
	checkComposeSecrets(p, &found)
	checkComposeNeighbours(p, filepath.Dir(file), &found)
	return p, found
}

// checkComposeServices: the services, their images, order and ports.
func checkComposeServices(p *types.Project, found *problems) {
	if p.Name != "hookwise" {
		found.add("compose: project name %q, want hookwise", p.Name)
	}
	for _, name := range []string{"postgres", "migrate", "hookwise", "nginx", "prometheus"} {
		if _, ok := p.Services[name]; !ok {
			found.add("compose: service %s missing", name)
		}
	}
	pg := p.Services["postgres"]
	if !strings.HasPrefix(pg.Image, "postgres:16") {
		found.add("compose: postgres image %q, want postgres:16", pg.Image)
	}
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) < 2 || pg.HealthCheck.Test[1] != "pg_isready" {
		found.add("compose: postgres needs a pg_isready healthcheck (the replicas wait for it)")
	}
	hw := p.Services["hookwise"]
	if hw.Deploy == nil || hw.Deploy.Replicas == nil || *hw.Deploy.Replicas != 3 {
		found.add("compose: hookwise wants deploy.replicas: 3")
	}
	if len(hw.Ports) != 0 {
		found.add("compose: hookwise publishes ports; only nginx should")
	}
	if d, ok := hw.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
		found.add("compose: hookwise must depend on postgres being healthy")
	}
	if d, ok := hw.DependsOn["migrate"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		found.add("compose: hookwise must depend on migrate completing")
	}
	if !slices.Equal(hw.Command, []string{"serve"}) || !slices.Equal(p.Services["migrate"].Command, []string{"migrate"}) {
		found.add("compose: hookwise must run serve, and migrate run migrate")
	}
	// The webhook's port has the webhook and /healthz only; Prometheus, the
	// health check and nginx's /api/v1/ use the internal port.
	if v := hw.Environment["HOOKWISE_METRICS_LISTEN"]; v == nil || *v != ":9090" {
		found.add(`compose: hookwise's HOOKWISE_METRICS_LISTEN must be ":9090" (prometheus.yml and nginx.conf use it)`)
	}
	ng := p.Services["nginx"]
	if len(ng.Ports) != 1 || ng.Ports[0].Published != "8080" || ng.Ports[0].Target != 8080 {
		found.add("compose: nginx must publish 8080:8080, and nothing else")
	}
}

// checkComposeSecrets: the env file gives hookwise and migrate every
// setting they need, and the database URL is the compose PostgreSQL's.
// Values are never printed: the env file may be a real one.
func checkComposeSecrets(p *types.Project, found *problems) {
	pw := p.Services["postgres"].Environment["POSTGRES_PASSWORD"]
	for _, name := range []string{"hookwise", "migrate"} {
		env := p.Services[name].Environment
		for _, k := range requiredSecrets {
			if v := env[k]; v == nil || *v == "" {
				found.add("compose: %s: %s is not set by the env file", name, k)
			}
		}
		u := env["HOOKWISE_DATABASE_URL"]
		if u == nil || *u == "" {
			continue
		}
		if !strings.HasPrefix(*u, "postgres://") {
			found.add("compose: %s: HOOKWISE_DATABASE_URL must be a postgres:// URL", name)
		} else if pw != nil && !strings.Contains(*u, ":"+*pw+"@postgres:5432/") {
			found.add("compose: %s: HOOKWISE_DATABASE_URL does not use POSTGRES_PASSWORD and host postgres:5432", name)
		}
	}
}

// checkComposeNeighbours: nginx and Prometheus reach the replicas by the
// service's name and ports, and compose mounts their files.
func checkComposeNeighbours(p *types.Project, dir string, found *problems) {
	want := map[string][]string{
		"nginx.conf": {"server hookwise:8080 resolve;", "server hookwise:9090 resolve;", "proxy_pass http://hookwise;",
			"proxy_pass http://hookwise_internal;", "client_max_body_size 25m;", "location = /metrics"},
		"prometheus.yml": {"names: [hookwise]", "port: 9090", "alerts.yml"},
	}
	for _, f := range slices.Sorted(maps.Keys(want)) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			found.add("compose: %v", err)
			continue
		}
		for _, w := range want[f] {
			if !strings.Contains(string(b), w) {
				found.add("%s: want %q (compose.yaml's service names and ports)", f, w)
			}
		}
	}
	mounted := map[string]bool{}
	for _, name := range []string{"nginx", "prometheus"} {
		for _, v := range p.Services[name].Volumes {
			if v.Type == types.VolumeTypeBind {
				mounted[filepath.Base(v.Source)] = true
			}
		}
	}
	for _, f := range []string{"nginx.conf", "prometheus.yml", "alerts.yml"} {
		if !mounted[f] {
			found.add("compose: nothing mounts %s into nginx or prometheus", f)
		}
	}
}
