package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunExitStatusAndOutput(t *testing.T) {
	broken := copyDeploy(t)
	edit(t, filepath.Join(broken, "Dockerfile"), "USER 65532:65532", "USER 0:0")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no check", nil, 2, "", "usage: deploycheck"},
		{"an unknown check", []string{"helm"}, 2, "", `unknown check "helm"`},
		{"a missing flag", []string{"compose", filepath.Join(deployDir, "compose.yaml")}, 2, "", "compose needs -env-file"},
		{"an unknown flag", []string{"k8s", "-strict", deployDir}, 2, "", "flag provided but not defined: -strict"},
		{"too many arguments", []string{"dockerfile", "a", "b"}, 2, "", "dockerfile takes one argument, got 2"},
		{"a file that is not there", []string{"dockerfile", filepath.Join(broken, "Containerfile")}, 1, "problem: open ", ""},
		{"a broken file", []string{"dockerfile", filepath.Join(broken, "Dockerfile")}, 1,
			"problem: Dockerfile: the final stage's USER is 0:0, want 65532:65532 (hookwise does not run as root)\n", ""},
		{"sound files", []string{"metrics", "-src", "../..", filepath.Join(deployDir, "alerts.yml")}, 0, "alerts.yml names ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("run(%q) = %d, want %d\nstdout: %s\nstderr: %s", tt.args, code, tt.wantCode, &stdout, &stderr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("run(%q) stdout = %q, want it to contain %q", tt.args, &stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("run(%q) stderr = %q, want it to contain %q", tt.args, &stderr, tt.wantStderr)
			}
		})
	}
}
