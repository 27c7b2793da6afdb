package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// configKey is the ConfigMap key that holds hookwise's YAML config.
const configKey = "hookwise.yaml"

func k8sCommand(_ context.Context, args []string, stdout io.Writer) (problems, error) {
	fs := flag.NewFlagSet("k8s", flag.ContinueOnError)
	configOut := fs.String("config-out", "", "write the ConfigMap's "+configKey+" here")
	envOut := fs.String("env-out", "", "write the Secret's values here as KEY=VALUE lines")
	if err := parseFlags(fs, args, 1, 1); err != nil {
		return nil, err
	}
	m, found := checkK8s(fs.Arg(0))
	if m == nil {
		return found, nil
	}
	if *configOut != "" && len(m.configMaps) == 1 {
		if err := os.WriteFile(*configOut, []byte(m.configMaps[0].Data[configKey]), 0o600); err != nil {
			found.add("%v", err)
		}
	}
	if *envOut != "" && len(m.secrets) == 1 {
		if err := os.WriteFile(*envOut, []byte(envLines(m.secrets[0].StringData)), 0o600); err != nil {
			found.add("%v", err)
		}
	}
	if len(found) == 0 {
		fmt.Fprintf(stdout, "k8s: %d manifests decoded strictly, cross-references consistent\n", len(m.files))
	}
	return found, nil
}

// envLines renders values as an env file, sorted by key.
func envLines(values map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(values)) {
		fmt.Fprintf(&b, "%s=%s\n", k, values[k])
	}
	return b.String()
}

// manifests are the objects decoded from a directory of manifests.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	files       map[string]string // kind/name → file
}

// kustomization is the part of kustomization.yaml that deploy/k8s uses; decoding
// it strictly makes any other field an error.
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

// checkK8s decodes every manifest in dir strictly into the Kubernetes API
// types and checks the references between them. The manifests are nil
// when there is not exactly one of each kind to check.
func checkK8s(dir string) (*manifests, problems) {
	var found problems
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, problems{fmt.Sprintf("k8s: no manifests in %s", dir)}
	}
	m := decodeManifests(files, &found)
	checkKustomization(dir, files, &found)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.pdbs) != 1 || len(m.configMaps) != 1 || len(m.secrets) != 1 {
		found.add("k8s: want one each of Deployment, Service, PodDisruptionBudget, ConfigMap, Secret; got %d, %d, %d, %d, %d",
			len(m.deployments), len(m.services), len(m.pdbs), len(m.configMaps), len(m.secrets))
		return nil, found
	}
	d, cm, sec := m.deployments[0], m.configMaps[0], m.secrets[0]
	for _, o := range []metav1.ObjectMeta{d.ObjectMeta, m.services[0].ObjectMeta, m.pdbs[0].ObjectMeta, cm.ObjectMeta, sec.ObjectMeta} {
		checkMeta(o, &found)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		found.add("deployment: want one container, got %d", len(d.Spec.Template.Spec.Containers))
		return m, found
	}
	checkDeployment(d, &found)
	ports := containerPorts(d.Spec.Template.Spec.Containers[0], &found)
	checkProbes(d.Spec.Template.Spec.Containers[0], ports, &found)
	checkConfigAndSecret(d, cm, sec, &found)
	checkShutdownAndPorts(d, cm, ports, &found)
	checkService(m.services[0], d, ports, &found)
	checkPDB(m.pdbs[0], d, &found)
	checkSecretExample(sec, &found)
	return m, found
}

// decodeManifests decodes each document of each file except
// kustomization.yaml.
func decodeManifests(files []string, found *problems) *manifests {
	m := &manifests{files: map[string]string{}}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			found.add("k8s: %v", err)
			continue
		}
		for i, doc := range splitDocs(b) {
			if err := m.decode(base, doc); err != nil {
				found.add("%s (document %d): %v", base, i+1, err)
			}
		}
	}
	return m
}

// decode reads one document strictly (unknown or duplicate fields are
// errors) into the API type its apiVersion and kind name.
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

// splitDocs splits a YAML stream at "---" lines, dropping documents that
// hold only comments.
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

// checkKustomization: strict, every resource exists, every manifest is a
// resource, and the example Secret is never applied (it would overwrite
// the real one with placeholders).
func checkKustomization(dir string, files []string, found *problems) {
	var k kustomization
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		found.add("k8s: %v", err)
		return
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		found.add("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		found.add("kustomization.yaml: want apiVersion kustomize.config.k8s.io/v1beta1 and kind Kustomization")
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			found.add("kustomization.yaml: resource %s: %v", r, err)
		}
		if strings.Contains(r, "example") {
			found.add("kustomization.yaml: %s must not be applied", r)
		}
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && !strings.Contains(base, "example") && !slices.Contains(k.Resources, base) {
			found.add("kustomization.yaml does not list %s", base)
		}
	}
}

// checkMeta: valid names and labels, and no namespace (the user picks it).
func checkMeta(o metav1.ObjectMeta, found *problems) {
	for _, msg := range validation.IsDNS1123Subdomain(o.Name) {
		found.add("k8s: name %q: %s", o.Name, msg)
	}
	if o.Namespace != "" {
		found.add("k8s: %s: manifests are namespace-free, found namespace %q", o.Name, o.Namespace)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Labels)) {
		v := o.Labels[k]
		for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
			found.add("k8s: %s: label %s=%s: %s", o.Name, k, v, msg)
		}
	}
}

// checkDeployment: replicas, selector, the locked-down container and its
// resources.
func checkDeployment(d *appsv1.Deployment, found *problems) {
	pod := d.Spec.Template
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		found.add("deployment: want replicas: 3")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		found.add("deployment: selector does not match the pod template's labels")
	}
	c := pod.Spec.Containers[0]
	psc, csc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		found.add("deployment: the pod must run as a non-root uid (runAsNonRoot, runAsUser)")
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		found.add("deployment: readOnlyRootFilesystem must be true")
	}
	if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		found.add("deployment: allowPrivilegeEscalation must be false")
	}
	if csc == nil || csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
		found.add("deployment: capabilities must drop ALL")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		found.add("deployment: set cpu and memory requests and a memory limit")
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		found.add("deployment: memory limit below request")
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		found.add("deployment: args must be [serve]")
	}
}

// containerPorts returns the container's ports by name.
func containerPorts(c corev1.Container, found *problems) map[string]int32 {
	ports := map[string]int32{}
	for _, p := range c.Ports {
		for _, msg := range validation.IsValidPortName(p.Name) {
			found.add("deployment: port name %q: %s", p.Name, msg)
		}
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 {
		found.add("deployment: want container port http: 8080")
	}
	return ports
}

// checkProbes: each probe GETs the path that answers what it asks, on a
// container port, with explicit timings.
func checkProbes(c corev1.Container, ports map[string]int32, found *problems) {
	probe := func(name string, p *corev1.Probe, path string) {
		switch {
		case p == nil:
			found.add("deployment: %s missing (want GET %s)", name, path)
		case p.HTTPGet == nil || p.HTTPGet.Path != path:
			found.add("deployment: %s must GET %s", name, path)
		case targetNumber(p.HTTPGet.Port, ports) == 0:
			found.add("deployment: %s port %s is not a container port", name, p.HTTPGet.Port.String())
		case p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1:
			found.add("deployment: %s needs timeoutSeconds, periodSeconds and failureThreshold", name)
		}
	}
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	probe("startupProbe", c.StartupProbe, "/healthz")
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 2 {
		found.add("deployment: readinessProbe timeoutSeconds must exceed /readyz's own 2 s bound")
	}
}

// checkConfigAndSecret: the container takes its environment from the Secret
// in this directory and its config file from the ConfigMap, mounted where
// HOOKWISE_CONFIG points; a read-only root needs a writable /tmp.
func checkConfigAndSecret(d *appsv1.Deployment, cm *corev1.ConfigMap, sec *corev1.Secret, found *problems) {
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	var configPath string
	for _, e := range c.Env {
		if e.Name == "HOOKWISE_CONFIG" {
			configPath = e.Value
		}
	}
	if !slices.ContainsFunc(c.EnvFrom, func(ef corev1.EnvFromSource) bool {
		return ef.SecretRef != nil && ef.SecretRef.Name == sec.Name
	}) {
		found.add("deployment: envFrom must reference Secret %q", sec.Name)
	}
	if configPath != "/etc/hookwise/hookwise.yaml" {
		found.add("deployment: HOOKWISE_CONFIG = %q, want /etc/hookwise/hookwise.yaml", configPath)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	configMounted, tmpMounted := false, false
	for _, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			found.add("deployment: volumeMount %s has no volume", vm.Name)
			continue
		}
		if vm.MountPath == "/tmp" && v.EmptyDir != nil {
			tmpMounted = true
		}
		if v.ConfigMap == nil {
			continue
		}
		if v.ConfigMap.Name != cm.Name {
			found.add("deployment: volume %s names ConfigMap %q, want %q", v.Name, v.ConfigMap.Name, cm.Name)
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				found.add("deployment: ConfigMap %s has no key %s", cm.Name, it.Key)
			}
			if filepath.Join(vm.MountPath, it.Path) == configPath {
				configMounted = true
			}
		}
	}
	if !configMounted {
		found.add("deployment: nothing mounts the ConfigMap at HOOKWISE_CONFIG (%s)", configPath)
	}
	if !tmpMounted {
		found.add("deployment: a read-only root needs an emptyDir at /tmp")
	}
}

// checkShutdownAndPorts reads the ConfigMap's hookwise config: the grace
// period must cover the preStop sleep and twice shutdown_timeout, and the
// readiness probe and scrape annotation must use metrics_listen's port.
func checkShutdownAndPorts(d *appsv1.Deployment, cm *corev1.ConfigMap, ports map[string]int32, found *problems) {
	pod := d.Spec.Template
	c := pod.Spec.Containers[0]
	shutdown := 30 * time.Second
	var cfg struct {
		ShutdownTimeout string `json:"shutdown_timeout"`
		MetricsListen   string `json:"metrics_listen"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data[configKey]), &cfg); err != nil {
		found.add("configmap: %s: %v", configKey, err)
	} else if cfg.ShutdownTimeout != "" {
		if shutdown, err = time.ParseDuration(cfg.ShutdownTimeout); err != nil {
			found.add("configmap: shutdown_timeout: %v", err)
		}
	}
	checkInternalPort(cfg.MetricsListen, c, pod.Annotations, ports, found)
	var preStop int64
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		found.add("deployment: want a preStop sleep (the image has no shell)")
	} else {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	need := preStop + int64(2*shutdown/time.Second)
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g <= need {
		found.add("deployment: terminationGracePeriodSeconds must exceed preStop + 2×shutdown_timeout = %ds", need)
	}
}

// checkInternalPort: with metrics_listen set, /readyz and /metrics are
// served on its port only, so the readiness probe and the scrape annotation
// must use it, and it must be a container port.
func checkInternalPort(listen string, c corev1.Container, annotations map[string]string, ports map[string]int32, found *problems) {
	if listen == "" {
		return
	}
	_, port, err := net.SplitHostPort(listen)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		found.add("configmap: metrics_listen %q is not host:port", listen)
		return
	}
	if !slices.Contains(slices.Collect(maps.Values(ports)), int32(n)) {
		found.add("deployment: metrics_listen's port %d is not a container port", n)
	}
	if p := c.ReadinessProbe; p != nil && p.HTTPGet != nil && targetNumber(p.HTTPGet.Port, ports) != int32(n) {
		found.add("deployment: readinessProbe must use metrics_listen's port %d: /readyz is served there only", n)
	}
	if annotations["prometheus.io/port"] != port {
		found.add("deployment: prometheus.io/port must be metrics_listen's port %s: /metrics is served there only", port)
	}
}

// checkService: a ClusterIP on port 80 to the webhook's container port.
func checkService(svc *corev1.Service, d *appsv1.Deployment, ports map[string]int32, found *problems) {
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		found.add("service: want type ClusterIP")
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		found.add("service: selector does not match the pods")
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || targetNumber(svc.Spec.Ports[0].TargetPort, ports) != 8080 {
		found.add("service: want one port, 80 → container port 8080")
	}
}

// checkPDB: one replica at a time may be disrupted, and a drain can always
// make progress.
func checkPDB(pdb *policyv1.PodDisruptionBudget, d *appsv1.Deployment, found *problems) {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		found.add("pdb: selector does not match the pods")
	}
	if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
		found.add("pdb: set exactly one of minAvailable and maxUnavailable")
	}
	if pdb.Spec.MaxUnavailable != nil && pdb.Spec.MaxUnavailable.IntValue() != 1 {
		found.add("pdb: want maxUnavailable: 1")
	}
	if pdb.Spec.MinAvailable != nil && d.Spec.Replicas != nil && int32(pdb.Spec.MinAvailable.IntValue()) >= *d.Spec.Replicas {
		found.add("pdb: minAvailable must be below replicas, or no node can ever be drained")
	}
}

// checkSecretExample: the keys hookwise needs, every value a placeholder.
// A value is never printed, in case a real one was pasted in.
func checkSecretExample(sec *corev1.Secret, found *problems) {
	for _, key := range requiredSecrets {
		if _, ok := sec.StringData[key]; !ok {
			found.add("secret: missing %s", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(sec.StringData)) {
		for _, msg := range validation.IsConfigMapKey(key) {
			found.add("secret: key %s: %s", key, msg)
		}
		if !strings.Contains(sec.StringData[key], "REPLACE-ME") {
			found.add("secret: %s does not look like a placeholder (want REPLACE-ME in it)", key)
		}
	}
	if u := sec.StringData["HOOKWISE_DATABASE_URL"]; !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		found.add("secret: HOOKWISE_DATABASE_URL must be a postgres:// URL")
	}
	if len(sec.Data) != 0 {
		found.add("secret: use stringData for readable placeholders")
	}
}

// targetNumber resolves a port given by number or by name to the container
// port it means, or 0 when it is none of them.
func targetNumber(p intstr.IntOrString, ports map[string]int32) int32 {
	if p.Type == intstr.String {
		return ports[p.StrVal]
	}
	if slices.Contains(slices.Collect(maps.Values(ports)), p.IntVal) {
		return p.IntVal
	}
	return 0
}
