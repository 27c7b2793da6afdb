package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/logtest"
)

// TestCheckConfigShowsTheBudget: check-config says which daily budget
// applies, and that an unset one is the default.
func TestCheckConfigShowsTheBudget(t *testing.T) {
	t.Setenv("HOOKWISE_BUDGET_DAILY", "")
	zero := filepath.Join(t.TempDir(), "zero.yaml")
	if err := os.WriteFile(zero, []byte("budget:\n  daily: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, config, env, want string
	}{
		{"unset", "", "", "\n# budget: daily $5.00 (the default; raise budget.daily in the config, or set it to 0 for no limit); monthly no limit; over a limit: defer\n"},
		{"zero in the file", zero, "", "\n# budget: daily no limit;"},
		{"from the environment", "", "12.5", "\n# budget: daily $12.50;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOOKWISE_CONFIG", tt.config)
			t.Setenv("HOOKWISE_BUDGET_DAILY", tt.env)
			var out, errOut logtest.Buffer
			// Without credentials check-config reports it is not ready to
			// serve; the configuration is printed all the same.
			_ = run([]string{"check-config"}, &out, &errOut)
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("check-config output does not contain %q:\n%s", tt.want, out.String())
			}
		})
	}
}
