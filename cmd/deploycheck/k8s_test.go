package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestK8sAcceptsTheRepositorysManifests(t *testing.T) {
	m, found := checkK8s(filepath.Join(deployDir, "k8s"))
	wantNoProblems(t, found)
	if m == nil || len(m.files) != 5 {
		t.Fatalf("checkK8s decoded %v, want 5 objects", m)
	}
}

func TestK8sWritesTheConfigAndSecretForCheckConfig(t *testing.T) {
	dir := t.TempDir()
	configOut, envOut := filepath.Join(dir, "hookwise.yaml"), filepath.Join(dir, "secret.env")
	var out bytes.Buffer
	found, err := k8sCommand(context.Background(), []string{"-config-out", configOut, "-env-out", envOut, filepath.Join(deployDir, "k8s")}, &out)
	if err != nil {
		t.Fatal(err)
	}
	wantNoProblems(t, found)
	config, _ := os.ReadFile(configOut)
	if !strings.Contains(string(config), `metrics_listen: ":9090"`) {
		t.Errorf("config written = %q, want the ConfigMap's hookwise.yaml", config)
	}
	env, _ := os.ReadFile(envOut)
	lines := strings.Split(strings.TrimSpace(string(env)), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ANTHROPIC_API_KEY=REPLACE-ME") {
		t.Errorf("env written = %q, want the Secret's five values, sorted", env)
	}
}

func TestK8sFindsBrokenManifests(t *testing.T) {
	const liveness = `          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
`
	tests := []struct {
		name     string
		file     string // in deploy/k8s
		old, new string
		want     string
	}{
		{"no liveness probe", "deployment.yaml", liveness, "", "deployment: livenessProbe missing (want GET /healthz)"},
		{"a misspelt field", "deployment.yaml", "imagePullPolicy: IfNotPresent", "imagePullPolicyy: IfNotPresent",
			`deployment.yaml (document 1): error unmarshaling JSON: while decoding JSON: json: unknown field "imagePullPolicyy"`},
		{"a field of the wrong type", "deployment.yaml", "replicas: 3", "replicas: three", "deployment.yaml (document 1)"},
		{"readiness on the webhook's port", "deployment.yaml", "path: /readyz\n              port: internal", "path: /readyz\n              port: http",
			"readinessProbe must use metrics_listen's port 9090"},
		{"a probe on no container port", "deployment.yaml", "path: /readyz\n              port: internal", "path: /readyz\n              port: admin",
			"readinessProbe port admin is not a container port"},
		{"a grace period shorter than shutdown", "deployment.yaml", "terminationGracePeriodSeconds: 90", "terminationGracePeriodSeconds: 60",
			"terminationGracePeriodSeconds must exceed preStop + 2×shutdown_timeout = 70s"},
		{"a longer shutdown_timeout", "configmap.yaml", "shutdown_timeout: 30s", "shutdown_timeout: 45s",
			"preStop + 2×shutdown_timeout = 100s"},
		{"a writable root", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false",
			"readOnlyRootFilesystem must be true"},
		{"the Secret under another name", "deployment.yaml", "secretRef:\n                name: hookwise", "secretRef:\n                name: hookwise-env",
			`envFrom must reference Secret "hookwise"`},
		{"a namespace", "service.yaml", "  name: hookwise\n", "  name: hookwise\n  namespace: prod\n",
			`hookwise: manifests are namespace-free, found namespace "prod"`},
		{"a Service selecting other pods", "service.yaml", "component: server\n  ports:", "component: worker\n  ports:",
			"service: selector does not match the pods"},
		{"a budget no drain can meet", "pdb.yaml", "maxUnavailable: 1", "minAvailable: 3",
			"pdb: minAvailable must be below replicas"},
		{"a real-looking secret", "secret.example.yaml", `"REPLACE-ME-webhook-secret"`, `"whsec-0123456789"`,
			"secret: GITHUB_WEBHOOK_SECRET does not look like a placeholder"},
		{"the example Secret applied", "kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - secret.example.yaml\n",
			"kustomization.yaml: secret.example.yaml must not be applied"},
		{"a resource that is not there", "kustomization.yaml", "  - pdb.yaml\n", "  - pdb.yaml\n  - hpa.yaml\n",
			"kustomization.yaml: resource hpa.yaml"},
		{"an unknown kustomization field", "kustomization.yaml", "resources:", "resourcez:", `unknown field "resourcez"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(copyDeploy(t), "k8s")
			edit(t, filepath.Join(dir, tt.file), tt.old, tt.new)
			_, found := checkK8s(dir)
			wantProblem(t, found, tt.want)
			wantNotShown(t, found, "whsec-0123456789")
		})
	}
}

func TestK8sFindsMissingAndUnexpectedManifests(t *testing.T) {
	t.Run("no Secret", func(t *testing.T) {
		dir := filepath.Join(copyDeploy(t), "k8s")
		if err := os.Remove(filepath.Join(dir, "secret.example.yaml")); err != nil {
			t.Fatal(err)
		}
		m, found := checkK8s(dir)
		wantProblem(t, found, "want one each of Deployment, Service, PodDisruptionBudget, ConfigMap, Secret; got 1, 1, 1, 1, 0")
		if m != nil {
			t.Errorf("checkK8s returned manifests without a Secret; want none, so nothing is written for check-config")
		}
	})
	t.Run("a kind it does not know", func(t *testing.T) {
		dir := filepath.Join(copyDeploy(t), "k8s")
		writeFile(t, filepath.Join(dir, "pod.yaml"), "# a stray pod\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n")
		_, found := checkK8s(dir)
		wantProblem(t, found, `pod.yaml (document 1): unexpected apiVersion/kind "v1" "Pod"`)
		wantProblem(t, found, "kustomization.yaml does not list pod.yaml")
	})
	t.Run("no directory", func(t *testing.T) {
		_, found := checkK8s(filepath.Join(t.TempDir(), "nothing"))
		wantProblem(t, found, "k8s: no manifests in")
	})
}

func TestSplitDocsDropsCommentOnlyDocuments(t *testing.T) {
	docs := splitDocs([]byte("# header\n---\na: 1\n---\n# only a comment\n---\nb: 2\n"))
	if len(docs) != 2 || !strings.Contains(string(docs[0]), "a: 1") || !strings.Contains(string(docs[1]), "b: 2") {
		t.Errorf("splitDocs = %q, want the documents a and b", docs)
	}
}
