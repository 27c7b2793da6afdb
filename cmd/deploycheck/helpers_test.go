package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's deployment files: the checks' happy path, and the
// starting point of every broken copy the tests make.
const deployDir = "../../deploy"

// copyDeploy copies deploy/ to a temporary directory the test may break.
func copyDeploy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "deploy")
	if err := os.CopyFS(dir, os.DirFS(deployDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// edit replaces old with new in the file, once; old must be there, so that
// a test cannot pass because the file it breaks has changed.
func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), old); n != 1 {
		t.Fatalf("%s holds %q %d times, want once", path, old, n)
	}
	writeFile(t, path, strings.Replace(string(b), old, new, 1))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantProblem fails unless one of the problems contains want.
func wantProblem(t *testing.T, found problems, want string) {
	t.Helper()
	for _, p := range found {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("problems = %q, want one containing %q", found, want)
}

func wantNoProblems(t *testing.T, found problems) {
	t.Helper()
	if len(found) > 0 {
		t.Errorf("problems = %q, want none", found)
	}
}

// wantNotShown fails if any problem shows secret: checks name a setting,
// never print its value.
func wantNotShown(t *testing.T, found problems, secret string) {
	t.Helper()
	for _, p := range found {
		if strings.Contains(p, secret) {
			t.Errorf("problem %q shows the value %q", p, secret)
		}
	}
}
