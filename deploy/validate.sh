#!/usr/bin/env bash
# Validates the deployment files in deploy/ with whatever tools this machine
# has, skipping (with a message) what it cannot run. Run from anywhere:
#
#   bash deploy/validate.sh
#
# Exits non-zero if any check that ran failed. Steps:
#   compose     docker compose config (v2), and the same load with compose-go
#   hookwise    the Dockerfile's build command (a static binary); the binary
#               alone in an empty root as uid 65532, as in the image; and
#               `hookwise check-config` on the compose and k8s settings
#   nginx       nginx -t, then a smoke test through nginx to real hookwise
#               processes on loopback (signatures, de-duplication, body size,
#               retry past a dead replica, /metrics hidden, admin token)
#   prometheus  promtool check config / check rules / test rules; every
#               metric the alerts name exists in the Go code
#   grafana     the dashboard's JSON, datasource and queries (parsed by
#               promtool); every metric it names exists in the Go code
#   k8s         each manifest decoded strictly into the Kubernetes API types,
#               with cross-reference checks; kubectl kustomize
#   docker      docker build, only where a Docker engine runs
#
# Everything it starts listens on loopback and is stopped when it exits.
#
# Environment:
#   VERBOSE=1                    show the output of passing checks too
#   HOOKWISE_SRC                 build hookwise from this tree instead of the
#                                repository (e.g. an export of a commit)
#   HOOKWISE_SMOKE_DATABASE_URL  a postgres:// URL: the smoke test then runs
#                                three instances on it instead of one on SQLite
#
# The Kubernetes and compose checkers are Go programs written to a temporary
# module (they need k8s.io/api and compose-go, which hookwise does not).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
deploy="$root/deploy"
src="${HOOKWISE_SRC:-$root}"
export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"

tmp="$(mktemp -d)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
# forget_pid PID: a process already waited for is not cleanup's to kill.
forget_pid() {
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

passed=0 failed=0 skipped=0
failures=()
pass() { echo "  PASS: $*"; passed=$((passed + 1)); }
fail() { echo "  FAIL: $*"; failed=$((failed + 1)); failures+=("$*"); }
skip() { echo "  SKIP: $*"; skipped=$((skipped + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }
# run NAME CMD...: runs CMD with its output in a log, shown on failure (and
# always with VERBOSE=1).
run() {
	local name=$1 log
	shift
	log="$tmp/log.$((passed + failed + skipped))"
	if "$@" >"$log" 2>&1; then
		pass "$name"
		if [ -n "${VERBOSE:-}" ]; then sed 's/^/        /' "$log"; fi
	else
		fail "$name"
		sed 's/^/        /' "$log" | tail -n 40
	fi
}

# free_port VAR: sets VAR to a loopback TCP port nobody uses now: below the
# kernel's range for outgoing connections (whose local ports a bind would
# collide with), not one handed out before in this run, and with no socket
# on it at all. (Not $(free_port): the subshell would forget what it gave.)
given=" "
free_port() {
	local p low=32768
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then read -r low _ </proc/sys/net/ipv4/ip_local_port_range; fi
	[ "$low" -gt 12000 ] || low=32768
	for _ in $(seq 1 100); do
		p=$((10000 + RANDOM % (low - 10000)))
		[[ $given == *" $p "* ]] && continue
		if have ss; then
			[ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ] || continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		given+="$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	return 1
}

# wait_http URL CODE SECONDS: polls until URL answers CODE.
wait_http() {
	for _ in $(seq 1 $(($3 * 5))); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# is_static BINARY: no ELF interpreter, so it runs on scratch.
is_static() {
	local out
	if have readelf; then
		out="$(readelf -l "$1" 2>&1)" || return 1
		[[ $out != *INTERP* ]]
	else
		out="$(go version -m "$1" 2>&1)" || return 1
		[[ $out == *CGO_ENABLED=0* ]]
	fi
}

# ---------------------------------------------------------------------------
# The Go checker (compose-go, k8s.io/api), built in a module of its own.

deploycheck=""
build_deploycheck() {
	have go || return 1
	local dir="$tmp/deploycheck"
	mkdir -p "$dir"
	cat >"$dir/go.mod" <<'GOMOD'
module deploycheck

go 1.26

require (
	github.com/compose-spec/compose-go/v2 v2.16.2
	k8s.io/api v0.37.2
	k8s.io/apimachinery v0.37.2
	sigs.k8s.io/yaml v1.6.0
)
GOMOD
	cat >"$dir/main.go" <<'GOSRC'
// deploycheck validates hookwise's deployment files offline: the compose file
// as docker compose v2 loads it (compose-go: schema, interpolation, env
// files), and the Kubernetes manifests decoded strictly into the API types
// plus the cross-references between them. It is run by deploy/validate.sh
// from a temporary module, so none of this enters hookwise's go.mod.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck compose COMPOSE_FILE ENV_FILE | k8s DIR [CONFIG_OUT [ENV_OUT]]")
		os.Exit(2)
	}
	var errs []error
	switch os.Args[1] {
	case "compose":
		errs = checkCompose(os.Args[2], os.Args[3])
	case "k8s":
		var configOut, envOut string
		if len(os.Args) > 3 {
			configOut = os.Args[3]
		}
		if len(os.Args) > 4 {
			envOut = os.Args[4]
		}
		errs = checkK8s(os.Args[2], configOut, envOut)
	default:
		fmt.Fprintln(os.Stderr, "unknown check", os.Args[1])
		os.Exit(2)
	}
	for _, e := range errs {
		fmt.Fprintln(os.Stderr, "  FAIL:", e)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}

// ---- compose ---------------------------------------------------------------

func checkCompose(file, envFile string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// What `docker compose --env-file ENV_FILE -f FILE config` does, with the
	// hookwise containers' env_file pointed at ENV_FILE too.
	os.Setenv("HOOKWISE_ENV_FILE", filepath.Base(envFile))
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
	)
	if err != nil {
		return []error{err}
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		return []error{fmt.Errorf("load %s: %w", file, err)}
	}
	if p.Name != "hookwise" {
		bad("project name %q, want hookwise", p.Name)
	}
	for _, name := range []string{"postgres", "migrate", "hookwise", "nginx", "prometheus"} {
		if _, ok := p.Services[name]; !ok {
			bad("service %s missing", name)
		}
	}
	pg := p.Services["postgres"]
	if !strings.HasPrefix(pg.Image, "postgres:16") {
		bad("postgres image %q, want postgres:16", pg.Image)
	}
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) < 2 || pg.HealthCheck.Test[1] != "pg_isready" {
		bad("postgres needs a pg_isready healthcheck")
	}
	hw := p.Services["hookwise"]
	if hw.Deploy == nil || hw.Deploy.Replicas == nil || *hw.Deploy.Replicas != 3 {
		bad("hookwise: want deploy.replicas: 3")
	}
	if len(hw.Ports) != 0 {
		bad("hookwise publishes ports; only nginx should")
	}
	if d, ok := hw.DependsOn["postgres"]; !ok || d.Condition != "service_healthy" {
		bad("hookwise must depend on postgres being healthy")
	}
	if d, ok := hw.DependsOn["migrate"]; !ok || d.Condition != "service_completed_successfully" {
		bad("hookwise must depend on migrate completing")
	}
	for _, name := range []string{"hookwise", "migrate"} {
		s := p.Services[name]
		for _, k := range []string{"GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "ANTHROPIC_API_KEY", "HOOKWISE_ADMIN_TOKEN", "HOOKWISE_DATABASE_URL"} {
			if v := s.Environment[k]; v == nil || *v == "" {
				bad("%s: %s not set by the env file", name, k)
			}
		}
		if v := s.Environment["HOOKWISE_DATABASE_URL"]; v != nil && !strings.HasPrefix(*v, "postgres://") {
			bad("%s: HOOKWISE_DATABASE_URL must be a postgres:// URL", name)
		}
		if v, pw := s.Environment["HOOKWISE_DATABASE_URL"], pg.Environment["POSTGRES_PASSWORD"]; v != nil && pw != nil && !strings.Contains(*v, ":"+*pw+"@postgres:5432/") {
			bad("%s: HOOKWISE_DATABASE_URL does not use POSTGRES_PASSWORD and host postgres:5432", name)
		}
	}
	// The webhook's port has the webhook and /healthz only; Prometheus, the
	// health check and nginx's /api/v1/ use the internal port.
	if v := hw.Environment["HOOKWISE_METRICS_LISTEN"]; v == nil || *v != ":9090" {
		bad("hookwise: HOOKWISE_METRICS_LISTEN must be \":9090\" (prometheus.yml and nginx.conf use it)")
	}
	if !slices.Equal(hw.Command, []string{"serve"}) || !slices.Equal(p.Services["migrate"].Command, []string{"migrate"}) {
		bad("hookwise runs serve, migrate runs migrate")
	}
	ng := p.Services["nginx"]
	if len(ng.Ports) != 1 || ng.Ports[0].Published != "8080" || ng.Ports[0].Target != 8080 {
		bad("nginx must publish 8080:8080")
	}
	// nginx and Prometheus reach the replicas by the service's name and ports.
	dir := filepath.Dir(file)
	for f, want := range map[string][]string{
		"nginx.conf": {"server hookwise:8080 resolve;", "server hookwise:9090 resolve;", "proxy_pass http://hookwise;",
			"proxy_pass http://hookwise_internal;", "client_max_body_size 25m;", "location = /metrics"},
		"prometheus.yml": {"names: [hookwise]", "port: 9090", "alerts.yml"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			bad("%v", err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				bad("%s: want %q", f, w)
			}
		}
	}
	mounts := map[string]bool{}
	for _, name := range []string{"nginx", "prometheus"} {
		for _, v := range p.Services[name].Volumes {
			if v.Type == "bind" {
				mounts[filepath.Base(v.Source)] = true
			}
		}
	}
	for _, f := range []string{"nginx.conf", "prometheus.yml", "alerts.yml"} {
		if !mounts[f] {
			bad("compose does not mount %s", f)
		}
	}
	if errs == nil {
		y, _ := p.MarshalYAML()
		fmt.Printf("  compose: %d services, %d bytes of resolved config\n", len(p.Services), len(y))
	}
	return errs
}

// ---- Kubernetes --------------------------------------------------------------

type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	files       map[string]string // kind/name → file
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// checkK8s checks the manifests in dir. configOut, if set, receives the
// ConfigMap's hookwise.yaml and envOut the Secret's values as KEY=VALUE
// lines, for `hookwise check-config`.
func checkK8s(dir, configOut, envOut string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	m := manifests{files: map[string]string{}}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			bad("%v", err)
			continue
		}
		for i, doc := range splitDocs(b) {
			if err := m.decode(filepath.Base(f), doc); err != nil {
				bad("%s (document %d): %v", filepath.Base(f), i+1, err)
			}
		}
	}

	// kustomization.yaml: strict, every resource exists, the example Secret
	// is not applied.
	var k kustomization
	if b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml")); err != nil {
		bad("%v", err)
	} else if err := yaml.UnmarshalStrict(b, &k); err != nil {
		bad("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		bad("kustomization.yaml: apiVersion/kind")
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			bad("kustomization.yaml: resource %s: %v", r, err)
		}
		if strings.Contains(r, "example") {
			bad("kustomization.yaml: %s must not be applied", r)
		}
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && !strings.Contains(base, "example") && !slices.Contains(k.Resources, base) {
			bad("kustomization.yaml does not list %s", base)
		}
	}

	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.pdbs) != 1 || len(m.configMaps) != 1 || len(m.secrets) != 1 {
		bad("want one each of Deployment, Service, PodDisruptionBudget, ConfigMap, Secret; got %d %d %d %d %d",
			len(m.deployments), len(m.services), len(m.pdbs), len(m.configMaps), len(m.secrets))
		return errs
	}
	d, svc, pdb, cm, sec := m.deployments[0], m.services[0], m.pdbs[0], m.configMaps[0], m.secrets[0]
	for _, o := range []metav1.ObjectMeta{d.ObjectMeta, svc.ObjectMeta, pdb.ObjectMeta, cm.ObjectMeta, sec.ObjectMeta} {
		for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
			bad("name %q: %s", o.Name, msg)
		}
		if o.Namespace != "" {
			bad("%s: manifests are namespace-free, found namespace %q", o.Name, o.Namespace)
		}
		for lk, lv := range o.Labels {
			for _, msg := range append(validation.IsQualifiedName(lk), validation.IsValidLabelValue(lv)...) {
				bad("%s: label %s=%s: %s", o.Name, lk, lv, msg)
			}
		}
	}

	// Deployment.
	spec := d.Spec
	pod := spec.Template
	if spec.Replicas == nil || *spec.Replicas != 3 {
		bad("deployment: want replicas: 3")
	}
	sel, err := metav1.LabelSelectorAsSelector(spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		bad("deployment: selector does not match the pod template's labels")
	}
	if len(pod.Spec.Containers) != 1 {
		bad("deployment: want one container")
		return errs
	}
	c := pod.Spec.Containers[0]
	psc := pod.Spec.SecurityContext
	csc := c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		bad("deployment: pod must run as a non-root uid")
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		bad("deployment: readOnlyRootFilesystem must be true")
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		bad("deployment: allowPrivilegeEscalation must be false")
	}
	if csc == nil || csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		bad("deployment: capabilities must drop ALL")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		bad("deployment: set cpu and memory requests and a memory limit")
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		bad("deployment: memory limit below request")
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		bad("deployment: args must be [serve]")
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			bad("deployment: port name %q: %s", p.Name, msg)
		}
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 {
		bad("deployment: want container port http: 8080")
	}
	probe := func(name string, p *corev1.Probe, path string) {
		switch {
		case p == nil:
			bad("deployment: %s missing", name)
		case p.HTTPGet == nil || p.HTTPGet.Path != path:
			bad("deployment: %s must GET %s", name, path)
		case !portOK(p.HTTPGet.Port, ports):
			bad("deployment: %s port %s is not a container port", name, p.HTTPGet.Port.String())
		case p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1:
			bad("deployment: %s needs timeoutSeconds, periodSeconds and failureThreshold", name)
		}
	}
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	probe("startupProbe", c.StartupProbe, "/healthz")
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 2 {
		bad("deployment: readinessProbe timeout must exceed /readyz's own 2 s bound")
	}

	// Environment: the Secret and the ConfigMap are the ones in this directory.
	var configPath string
	for _, e := range c.Env {
		if e.Name == "HOOKWISE_CONFIG" {
			configPath = e.Value
		}
	}
	secretRef := false
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == sec.Name {
			secretRef = true
		}
	}
	if !secretRef {
		bad("deployment: envFrom must reference Secret %q", sec.Name)
	}
	if configPath != "/etc/hookwise/hookwise.yaml" {
		bad("deployment: HOOKWISE_CONFIG = %q, want /etc/hookwise/hookwise.yaml", configPath)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	configFound := false
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			bad("deployment: volumeMount %s has no volume", vm.Name)
			continue
		}
		if v.ConfigMap == nil {
			continue
		}
		if v.ConfigMap.Name != cm.Name {
			bad("deployment: volume %s names ConfigMap %q, want %q", v.Name, v.ConfigMap.Name, cm.Name)
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				bad("deployment: ConfigMap %s has no key %s", cm.Name, it.Key)
			}
			if filepath.Join(vm.MountPath, it.Path) == configPath {
				configFound = true
			}
		}
	}
	if !configFound {
		bad("deployment: nothing mounts the ConfigMap at HOOKWISE_CONFIG (%s)", configPath)
	}
	tmpOK := false
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == "/tmp" && volumes[vm.Name].EmptyDir != nil {
			tmpOK = true
		}
	}
	if !tmpOK {
		bad("deployment: a read-only root needs an emptyDir at /tmp")
	}

	// Shutdown: preStop sleep, then up to twice shutdown_timeout.
	shutdown := 30 * time.Second
	var hcfg struct {
		ShutdownTimeout string `json:"shutdown_timeout"`
		MetricsListen   string `json:"metrics_listen"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["hookwise.yaml"]), &hcfg); err != nil {
		bad("configmap: hookwise.yaml: %v", err)
	} else if hcfg.ShutdownTimeout != "" {
		if shutdown, err = time.ParseDuration(hcfg.ShutdownTimeout); err != nil {
			bad("configmap: shutdown_timeout: %v", err)
		}
	}
	checkInternalPort(hcfg.MetricsListen, c, pod.Annotations, ports, bad)
	var preStop int64
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		bad("deployment: want a preStop sleep (the image has no shell)")
	} else {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	need := preStop + int64(2*shutdown/time.Second)
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g <= need {
		bad("deployment: terminationGracePeriodSeconds must exceed preStop + 2×shutdown_timeout = %ds", need)
	}
	if configOut != "" {
		if err := os.WriteFile(configOut, []byte(cm.Data["hookwise.yaml"]), 0o600); err != nil {
			bad("%v", err)
		}
	}

	// Service.
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		bad("service: want type ClusterIP")
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		bad("service: selector does not match the pods")
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || !portOK(svc.Spec.Ports[0].TargetPort, ports) || targetNumber(svc.Spec.Ports[0].TargetPort, ports) != 8080 {
		bad("service: want port 80 → container port 8080")
	}

	// PodDisruptionBudget.
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || psel.Empty() || !psel.Matches(labels.Set(pod.Labels)) {
		bad("pdb: selector does not match the pods")
	}
	if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
		bad("pdb: set exactly one of minAvailable and maxUnavailable")
	}
	if pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() != 1 {
		bad("pdb: want maxUnavailable: 1")
	}
	if pdb.Spec.MinAvailable != nil && spec.Replicas != nil && int32(pdb.Spec.MinAvailable.IntValue()) >= *spec.Replicas {
		bad("pdb: minAvailable must be below replicas, or no node can ever be drained")
	}

	// Secret example: the keys hookwise needs, every value a placeholder.
	for _, key := range []string{"GITHUB_WEBHOOK_SECRET", "GITHUB_TOKEN", "ANTHROPIC_API_KEY", "HOOKWISE_ADMIN_TOKEN", "HOOKWISE_DATABASE_URL"} {
		if _, ok := sec.StringData[key]; !ok {
			bad("secret: missing %s", key)
		}
	}
	for key, v := range sec.StringData {
		for _, msg := range validation.IsConfigMapKey(key) {
			bad("secret: key %s: %s", key, msg)
		}
		if !strings.Contains(v, "REPLACE-ME") {
			bad("secret: %s does not look like a placeholder", key)
		}
	}
	if u := sec.StringData["HOOKWISE_DATABASE_URL"]; !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		bad("secret: HOOKWISE_DATABASE_URL must be a postgres:// URL")
	}
	if len(sec.Data) != 0 {
		bad("secret: use stringData for readable placeholders")
	}
	if envOut != "" {
		var b strings.Builder
		for _, key := range slices.Sorted(maps.Keys(sec.StringData)) {
			fmt.Fprintf(&b, "%s=%s\n", key, sec.StringData[key])
		}
		if err := os.WriteFile(envOut, []byte(b.String()), 0o600); err != nil {
			bad("%v", err)
		}
	}

	if errs == nil {
		fmt.Printf("  k8s: %d manifests decoded strictly, cross-references consistent\n", len(m.files))
	}
	return errs
}

// checkInternalPort: with metrics_listen set, /readyz and /metrics are
// served on its port only, so the readiness probe and the scrape annotation
// must use it, and it must be a container port.
func checkInternalPort(listen string, c corev1.Container, annotations map[string]string, ports map[string]int32, bad func(string, ...any)) {
	if listen == "" {
		return
	}
	_, port, err := net.SplitHostPort(listen)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		bad("configmap: metrics_listen %q is not host:port", listen)
		return
	}
	if !slices.Contains(slices.Collect(maps.Values(ports)), int32(n)) {
		bad("deployment: metrics_listen's port %d is not a container port", n)
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && targetNumber(p.HTTPGet.Port, ports) != int32(n) {
		bad("deployment: readinessProbe must use metrics_listen's port %d: /readyz is served there only", n)
	}
	if annotations["prometheus.io/port"] != port {
		bad("deployment: prometheus.io/port must be metrics_listen's port %s: /metrics is served there only", port)
	}
}

func portOK(p intstr.IntOrString, ports map[string]int32) bool {
	return targetNumber(p, ports) != 0
}

func targetNumber(p intstr.IntOrString, ports map[string]int32) int32 {
	if p.Type == intstr.String {
		return ports[p.StrVal]
	}
	for _, n := range ports {
		if n == p.IntVal {
			return n
		}
	}
	return 0
}

// splitDocs splits a YAML stream at "---" lines, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// decode reads one document strictly (unknown or duplicate fields are errors)
// into the API type its apiVersion and kind name.
func (m *manifests) decode(file string, doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj interface{ GetName() string }
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		m.deployments, obj = append(m.deployments, o), o
	case "v1 Service":
		o := &corev1.Service{}
		m.services, obj = append(m.services, o), o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		m.pdbs, obj = append(m.pdbs, o), o
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps, obj = append(m.configMaps, o), o
	case "v1 Secret":
		o := &corev1.Secret{}
		m.secrets, obj = append(m.secrets, o), o
	default:
		return fmt.Errorf("unexpected apiVersion/kind %q %q", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return err
	}
	if obj.GetName() == "" {
		return errors.New("metadata.name missing")
	}
	m.files[tm.Kind+"/"+obj.GetName()] = file
	return nil
}
GOSRC
	(cd "$dir" && GOWORK=off GOFLAGS=-mod=mod go mod tidy && GOWORK=off go build -o deploycheck .) >"$tmp/deploycheck.log" 2>&1 || {
		sed 's/^/        /' "$tmp/deploycheck.log" | tail -n 20
		return 1
	}
	deploycheck="$dir/deploycheck"
}

echo "== building the Go checker (compose-go, k8s.io/api) in a temporary module"
if build_deploycheck; then
	pass "checker built"
else
	skip "checker could not be built (no Go, or the Go module proxy is unreachable): compose-go and Kubernetes type checks skipped"
fi

# ---------------------------------------------------------------------------
echo "== compose"
compose_env=(env HOOKWISE_ENV_FILE=.env.example)
if docker compose version >/dev/null 2>&1; then
	run "docker compose config ($(docker compose version --short))" \
		"${compose_env[@]}" docker compose --env-file "$deploy/.env.example" -f "$deploy/compose.yaml" config -q
elif have docker-compose && docker-compose version 2>/dev/null | grep -q '^Docker Compose version'; then
	run "docker-compose config ($(docker-compose version --short))" \
		"${compose_env[@]}" docker-compose --env-file "$deploy/.env.example" -f "$deploy/compose.yaml" config -q
else
	# Debian's docker-compose is Compose v1, which does not read the current
	# Compose spec (top-level name, service_completed_successfully, ...).
	skip "docker compose v2 is not installed (see deploy/README.md, Validate, for building it from the Go module proxy)"
fi
if [ -n "$deploycheck" ]; then
	run "compose.yaml loaded with compose-go (schema, interpolation, env file) and cross-checked with nginx.conf and prometheus.yml" \
		"$deploycheck" compose "$deploy/compose.yaml" "$deploy/.env.example"
else
	skip "compose-go check (no checker)"
fi

# ---------------------------------------------------------------------------
echo "== hookwise binary (the Dockerfile's build command)"
bin=""
if ! have go; then
	skip "no Go toolchain: static build, check-config and smoke test skipped"
else
	dockerfile_check() {
		local want ok=0
		for want in 'CGO_ENABLED=0' '-trimpath' '-ldflags "-s -w"' 'FROM scratch' 'USER 65532:65532' 'EXPOSE 8080' \
			'VOLUME \["/data"\]' 'ENV HOOKWISE_DATABASE_URL=/data/hookwise.db' 'ENTRYPOINT \["/hookwise"\]' 'CMD \["serve"\]'; do
			grep -q -- "$want" "$deploy/Dockerfile" || { echo "Dockerfile lacks: $want"; ok=1; }
		done
		return $ok
	}
	run "Dockerfile has the static build flags, non-root USER, EXPOSE, VOLUME, ENTRYPOINT and CMD" dockerfile_check
	if (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/hookwise" ./cmd/hookwise) >"$tmp/build.log" 2>&1; then
		if is_static "$tmp/hookwise"; then
			pass "CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" ./cmd/hookwise in $src: a static binary ($(du -h "$tmp/hookwise" | cut -f1))"
			bin="$tmp/hookwise"
		else
			fail "the hookwise binary is dynamically linked: it would not run on scratch"
		fi
	else
		fail "hookwise does not build in $src (so neither would the image)"
		sed 's/^/        /' "$tmp/build.log" | tail -n 20
	fi
fi

# check_config NAME CONFIG_FILE ENV_FILE: hookwise check-config with exactly
# that environment. It exits 1 when the settings could not serve.
check_config() {
	local name=$1 cfg=$2 envfile=$3 line args=()
	while IFS= read -r line; do
		[[ $line =~ ^[A-Z_][A-Z0-9_]*= ]] && args+=("$line")
	done <"$envfile"
	if [ -n "$cfg" ]; then args+=("HOOKWISE_CONFIG=$cfg"); fi
	run "$name" env -i "PATH=$PATH" "${args[@]}" "$bin" check-config
}

if [ -n "$bin" ]; then
	check_config "hookwise check-config with deploy/.env.example (the compose environment)" "" "$deploy/.env.example"
else
	skip "check-config of the compose environment (no binary)"
fi

# The final image, without Docker: the binary alone in an empty root with
# the files the Dockerfile copies (CA bundle, /tmp, /data owned by 65532),
# run as uid 65532 with the image's default database path. It must migrate,
# answer /readyz, and exit 0 on SIGTERM.
scratch_check() {
	local r="$tmp/rootfs" port dead pid code
	mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/data"
	chmod 755 "$r"
	chmod 1777 "$r/tmp"
	chown 65532:65532 "$r/data"
	cp "$bin" "$r/hookwise"
	if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"; fi
	printf 'sweep:\n  interval: 0s\n' >"$r/etc/hookwise.yaml"
	free_port port && free_port dead || return 1
	env -i HOOKWISE_DATABASE_URL=/data/hookwise.db HOOKWISE_LISTEN="127.0.0.1:$port" HOOKWISE_CONFIG=/etc/hookwise.yaml \
		GITHUB_WEBHOOK_SECRET=x GITHUB_TOKEN=x GITHUB_API_URL="http://127.0.0.1:$dead/" \
		ANTHROPIC_API_KEY=x ANTHROPIC_BASE_URL="http://127.0.0.1:$dead" \
		"$(command -v chroot)" --userspec=65532:65532 "$r" /hookwise serve >"$tmp/scratch.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if ! wait_http "http://127.0.0.1:$port/readyz" 200 30; then
		cat "$tmp/scratch.log"
		return 1
	fi
	echo "ready as uid 65532; /data: $(ls -n "$r/data" | awk 'NR > 1 {print $3 ":" $4, $9}' | tr '\n' ' ')"
	kill -TERM "$pid"
	wait "$pid"
	code=$?
	forget_pid "$pid"
	echo "exit status after SIGTERM: $code"
	[ "$code" -eq 0 ] && [ "$(stat -c %u "$r/data/hookwise.db")" = 65532 ]
}

if [ -z "$bin" ]; then
	skip "image emulation (no binary)"
elif [ "$(id -u)" != 0 ] || ! have chroot || ! have curl; then
	skip "image emulation (needs root, chroot and curl)"
else
	run "the binary alone in an empty root, as uid 65532, on /data/hookwise.db: ready, then a clean SIGTERM exit" scratch_check
fi

# ---------------------------------------------------------------------------
echo "== nginx"
nginx_ok=""
if ! have nginx; then
	skip "nginx is not installed (Debian: apt-get install nginx-light)"
else
	nv="$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"
	# `server NAME resolve` needs nginx 1.27.3; the compose file runs 1.28.
	# An older local nginx checks everything else, with that word removed.
	resolve_ok=""
	if [ "$(printf '%s\n' 1.27.3 "$nv" | sort -V | head -n1)" = 1.27.3 ]; then resolve_ok=1; fi
	# The upstream name only resolves on the compose network: point it at
	# loopback here.
	if [ -n "$resolve_ok" ]; then
		sed -e 's/server hookwise:\([0-9]*\) resolve;/server 127.0.0.1:\1 resolve;/' "$deploy/nginx.conf" >"$tmp/nginx-t.conf"
		note=""
	else
		sed -e 's/server hookwise:\([0-9]*\) resolve;/server 127.0.0.1:\1;/' "$deploy/nginx.conf" >"$tmp/nginx-t.conf"
		note=" (nginx $nv predates 'resolve': checked without it)"
	fi
	run "nginx -t$note" nginx -t -q -c "$tmp/nginx-t.conf" -e stderr && nginx_ok=1
fi

smoke() {
	local d="$tmp/smoke" secret="smoke-secret-$$" token="smoke-admin-$$"
	mkdir -p "$d"
	chmod 755 "$tmp" "$d"
	local dead lb port internal n=1 db ports=() internals=() i
	free_port dead && free_port lb || { echo "no free port"; return 1; }
	db="$d/hookwise.db"
	if [[ ${HOOKWISE_SMOKE_DATABASE_URL:-} == postgres* ]]; then
		n=3 db="$HOOKWISE_SMOKE_DATABASE_URL"
	fi
	# No periodic sweep, and both upstreams on a dead port: nothing leaves
	# this machine.
	printf 'sweep:\n  interval: 0s\n' >"$d/hookwise.yaml"
	# Each instance as compose runs it: the webhook on one port, /metrics,
	# /readyz and the admin API on another (metrics_listen).
	for i in $(seq 1 "$n"); do
		free_port port && free_port internal || return 1
		ports+=("$port")
		internals+=("$internal")
		env -i "PATH=$PATH" HOOKWISE_CONFIG="$d/hookwise.yaml" HOOKWISE_LISTEN="127.0.0.1:${ports[-1]}" \
			HOOKWISE_METRICS_LISTEN="127.0.0.1:${internals[-1]}" \
			HOOKWISE_DATABASE_URL="$db" HOOKWISE_LOG_FORMAT=json HOOKWISE_ADMIN_TOKEN="$token" \
			GITHUB_WEBHOOK_SECRET="$secret" GITHUB_TOKEN=smoke GITHUB_API_URL="http://127.0.0.1:$dead/" \
			ANTHROPIC_API_KEY=smoke ANTHROPIC_BASE_URL="http://127.0.0.1:$dead" \
			"$bin" serve >"$d/hookwise-$i.log" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 0 $((n - 1))); do
		wait_http "http://127.0.0.1:${internals[i]}/readyz" 200 60 || {
			echo "hookwise on port ${internals[i]} never became ready"
			cat "$d"/hookwise-*.log
			return 1
		}
	done
	# The real config, on loopback: a dead replica first in the pool, so the
	# first request must be retried on another.
	local servers="server 127.0.0.1:$dead;" internal_servers=""
	for i in "${ports[@]}"; do servers+=" server 127.0.0.1:$i;"; done
	for i in "${internals[@]}"; do internal_servers+=" server 127.0.0.1:$i;"; done
	sed -e "s|server hookwise:8080 resolve;|$servers|" \
		-e "s|server hookwise:9090 resolve;|$internal_servers|" \
		-e "s|listen 8080;|listen 127.0.0.1:$lb;|" \
		-e "s|access_log /dev/stdout hookwise;|access_log $d/access.log hookwise;|" \
		-e "s|error_log stderr warn;|error_log $d/error.log warn;|" \
		"$deploy/nginx.conf" >"$d/nginx.conf"
	nginx -c "$d/nginx.conf" -e "$d/error.log" -g "daemon off; pid $d/nginx.pid;" &
	pids+=($!)
	wait_http "http://127.0.0.1:$lb/nginx-healthz" 200 10 || {
		echo "nginx did not start"
		cat "$d/error.log"
		return 1
	}

	local url="http://127.0.0.1:$lb" errs=0
	# post BODY_FILE EVENT GUID HOOK_ID [SIGNATURE]: prints "CODE BODY".
	post() {
		local sig=${5:-sha256=$(openssl dgst -sha256 -hmac "$secret" -r <"$1" | cut -d' ' -f1)}
		curl -s --max-time 20 -o "$d/answer" -w '%{http_code}' -X POST "$url/webhook" \
			-H 'Content-Type: application/json' -H "X-GitHub-Event: $2" -H "X-GitHub-Delivery: $3" \
			-H "X-GitHub-Hook-ID: $4" -H "X-Hub-Signature-256: $sig" --data-binary "@$1"
		printf ' %s' "$(head -c 120 "$d/answer" | tr -s '\n' ' ')"
	}
	expect() { # expect WHAT GOT WANT-REGEX
		if [[ $2 =~ $3 ]]; then echo "ok   $1: $2"; else echo "BAD  $1: got $2, want $3"; errs=$((errs + 1)); fi
	}
	local star='{"action":"created","starred_at":"2026-01-01T00:00:00Z","repository":{"id":1,"name":"website","full_name":"acme/website","owner":{"login":"acme"}},"sender":{"login":"octocat","type":"User"}}'
	printf '%s' "$star" >"$d/star.json"
	printf '{"zen":"Keep it logically awesome.","hook_id":1}' >"$d/ping.json"

	expect "ping" "$(post "$d/ping.json" ping "ping-$$" 1)" '^200 .*pong'
	for i in $(seq 1 12); do
		expect "delivery $i" "$(post "$d/star.json" star "guid-$$-$i" 100)" '^202 .*accepted'
	done
	expect "redelivery (same hook, same GUID)" "$(post "$d/star.json" star "guid-$$-1" 100)" '^202 .*duplicate'
	expect "same GUID from another hook" "$(post "$d/star.json" star "guid-$$-1" 200)" '^202 .*accepted'
	expect "bad signature" "$(post "$d/star.json" star "guid-$$-bad" 100 sha256=0000)" '^401 '
	# Just under GitHub's 25 MB cap passes nginx and hookwise; just over it
	# is refused by nginx.
	{
		printf '{"action":"created","repository":{"full_name":"acme/website"},"sender":{"login":"octocat","type":"User"},"pad":"'
		head -c $((24 * 1024 * 1024)) /dev/zero | tr '\0' 'x'
		printf '"}'
	} >"$d/big.json"
	expect "24 MiB delivery" "$(post "$d/big.json" star "guid-$$-big" 100)" '^202 .*accepted'
	head -c $((26 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$d/huge.json"
	expect "26 MiB delivery" "$(post "$d/huge.json" star "guid-$$-huge" 100 sha256=00)" '^413 '
	expect "GET /metrics through nginx" "$(curl -s -o /dev/null -w '%{http_code}' "$url/metrics")" '^404$'
	expect "admin API without token" "$(curl -s -o /dev/null -w '%{http_code}' "$url/api/v1/stats")" '^401$'
	expect "admin API with token" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/v1/stats")" '^200$'
	expect "admin POST with token" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "$url/api/v1/dlq/retry")" '^202$'
	expect "cross-site admin POST with token" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
		-H 'Sec-Fetch-Site: cross-site' "$url/api/v1/dlq/retry")" '^403$'
	# nginx logs every upstream it tried: "dead, live" is a retry.
	expect "a request retried past the dead replica" \
		"$(grep -c "upstream=127.0.0.1:$dead, " "$d/access.log")" '^[1-9]'
	# A replica's webhook port gives a stranger nothing that reaches the
	# database: /readyz, /metrics and the admin API are on the internal port.
	local path
	for path in /readyz /metrics /api/v1/stats; do
		expect "GET $path on a replica's webhook port" \
			"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[0]}$path")" '^404$'
	done
	expect "GET /healthz on a replica's webhook port" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[0]}/healthz")" '^200$'
	# Every replica's own /metrics: Prometheus's lint, and what was counted.
	local m="" one
	for i in "${internals[@]}"; do
		one="$(curl -s "http://127.0.0.1:$i/metrics")"
		m+="$one"$'\n'
		if have promtool; then
			expect "promtool check metrics on :$i/metrics" \
				"$(printf '%s\n' "$one" | promtool check metrics 2>&1 && echo clean)" 'clean$'
		fi
	done
	expect "accepted deliveries counted" \
		"$(printf '%s' "$m" | awk '/^hookwise_webhook_deliveries_total\{event="star",outcome="accepted"\}/ {s += $2} END {print s + 0}')" '^14$'
	[ "$errs" -eq 0 ]
}

if [ -z "$nginx_ok" ]; then
	skip "smoke test through nginx (needs nginx -t to pass)"
elif [ -z "$bin" ]; then
	skip "smoke test through nginx (no hookwise binary)"
elif ! have curl || ! have openssl; then
	skip "smoke test through nginx (needs curl and openssl)"
else
	what="1 instance on SQLite"
	[[ ${HOOKWISE_SMOKE_DATABASE_URL:-} == postgres* ]] && what="3 instances on PostgreSQL"
	run "smoke test: nginx.conf in front of hookwise ($what) on loopback" smoke
fi

# ---------------------------------------------------------------------------
echo "== prometheus"
if have promtool; then
	run "promtool check config prometheus.yml" promtool check config "$deploy/prometheus.yml"
	run "promtool check rules alerts.yml" promtool check rules "$deploy/alerts.yml"
	run "promtool test rules alerts_test.yml" promtool test rules "$deploy/alerts_test.yml"
else
	skip "promtool is not installed (Debian: apt-get install prometheus)"
fi
# metrics_defined WHAT FILE: every hookwise_ metric FILE names (comments
# aside) is defined in the Go code.
metrics_defined() {
	local missing="" metric
	for metric in $(grep -v '^[[:space:]]*#' "$2" | grep -o 'hookwise_[a-z_]*[a-z]' | sort -u); do
		grep -rqF "\"${metric%_bucket}\"" --include='*.go' "$src/internal" "$src/cmd" || missing+=" $metric"
	done
	if [ -z "$missing" ]; then
		pass "every metric $1 names is defined in the Go code"
	else
		fail "$1 names metrics the Go code does not define:$missing"
	fi
}
metrics_defined alerts.yml "$deploy/alerts.yml"

# ---------------------------------------------------------------------------
echo "== grafana"
dashboard="$deploy/grafana/dashboards/hookwise.json"
metrics_defined "the Grafana dashboard" "$dashboard"
# The dashboard's queries as recording rules, which promtool parses: a
# PromQL mistake fails here rather than as an empty panel.
dashboard_rules() {
	python3 - "$dashboard" "$deploy/grafana/provisioning/datasources/prometheus.yaml" "$tmp/dashboard-rules.yml" <<'PY'
import json, re, sys
dash = json.load(open(sys.argv[1]))
uid = re.search(r"^\s*uid:\s*(\S+)", open(sys.argv[2]).read(), re.M).group(1)
problems, rules = [], []
if dash.get("uid") != "hookwise":
    problems.append("dashboard uid is %r, want 'hookwise'" % dash.get("uid"))
for p in dash["panels"]:
    if p.get("datasource", {}).get("uid") != uid:
        problems.append("panel %r: datasource uid is not the provisioned %r" % (p["title"], uid))
    if not p.get("targets"):
        problems.append("panel %r has no query" % p["title"])
    for t in p.get("targets", []):
        rules.append(t["expr"])
with open(sys.argv[3], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(rules):
        f.write("      - record: dashboard:query_%d\n        expr: %s\n" % (i, json.dumps(e)))
for m in problems:
    print(m)
sys.exit(1 if problems else 0)
PY
}
if have python3; then
	run "Grafana dashboard: JSON, uid, every panel on the provisioned datasource with a query" dashboard_rules
	if have promtool && [ -s "$tmp/dashboard-rules.yml" ]; then
		run "promtool parses every query of the Grafana dashboard" promtool check rules "$tmp/dashboard-rules.yml"
	else
		skip "the dashboard's queries are not parsed (no promtool)"
	fi
else
	skip "Grafana dashboard checks (no python3)"
fi

# ---------------------------------------------------------------------------
echo "== kubernetes"
if [ -n "$deploycheck" ]; then
	run "k8s manifests decoded strictly into apps/v1, core/v1, policy/v1 types and cross-checked" \
		"$deploycheck" k8s "$deploy/k8s" "$tmp/k8s-hookwise.yaml" "$tmp/k8s-secret.env"
	if [ -n "$bin" ] && [ -s "$tmp/k8s-hookwise.yaml" ]; then
		check_config "hookwise check-config with the ConfigMap and the example Secret" "$tmp/k8s-hookwise.yaml" "$tmp/k8s-secret.env"
	fi
else
	skip "Kubernetes type checks (no checker)"
fi
if have kubectl && kubectl kustomize --help >/dev/null 2>&1; then
	kustomize_check() {
		kubectl kustomize "$deploy/k8s" >"$tmp/kustomized.yaml" || return 1
		local kinds
		kinds="$(grep '^kind:' "$tmp/kustomized.yaml" | sort | tr '\n' ' ')"
		echo "kinds: $kinds"
		[ "$kinds" = "kind: ConfigMap kind: Deployment kind: PodDisruptionBudget kind: Service " ] &&
			grep -q 'image: registry.example.com/hookwise:0.1.0' "$tmp/kustomized.yaml"
	}
	run "kubectl kustomize deploy/k8s (ConfigMap, Deployment, PodDisruptionBudget, Service; image set)" kustomize_check
else
	skip "kubectl is not installed: kustomization.yaml checked by the Go checker only"
fi

# ---------------------------------------------------------------------------
echo "== docker"
if have docker && docker info >/dev/null 2>&1; then
	run "docker build -f deploy/Dockerfile ." docker build -q -f "$deploy/Dockerfile" -t hookwise:validate "$root"
else
	skip "no Docker engine runs here: the image build is not tried (its build command is, above)"
fi

echo
echo "deploy/validate.sh: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ]; then
	printf '  failed: %s\n' "${failures[@]}"
	exit 1
fi
