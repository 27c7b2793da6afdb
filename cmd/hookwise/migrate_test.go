package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hookwise/hookwise/internal/logtest"
)

// `hookwise migrate` says which hookwises may run on the migrated database:
// what an operator checks before a rolling upgrade.
func TestMigratePrintsSchemaState(t *testing.T) {
	t.Setenv("HOOKWISE_DATABASE_URL", filepath.Join(t.TempDir(), "hookwise.db"))
	t.Setenv("HOOKWISE_CONFIG", "")
	var out, errOut logtest.Buffer
	if err := run([]string{"migrate"}, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	want := regexp.MustCompile(`^migrations applied: schema version (\d+) \(this hookwise knows (\d+)\); ` +
		`(a hookwise that knows schema version \d+ or later can run on it|only a hookwise that knows schema version \d+ or later can run on it: an older one refuses to start)\n$`)
	m := want.FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] {
		t.Errorf("migrate printed %q, want the schema version, which this hookwise knows, and which hookwises can run on it", out.String())
	}
}
