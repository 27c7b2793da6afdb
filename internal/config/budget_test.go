package config

import (
	"strings"
	"testing"
)

// TestDailyBudgetDefault: an unset budget.daily is DefaultDailyBudget; a
// 0 set in the file or the environment is no limit.
func TestDailyBudgetDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		yaml        string
		env         map[string]string
		want        float64
		wantSummary string
	}{
		{"unset", "", nil, 5, "budget: daily $5.00 (the default; raise budget.daily in the config, or set it to 0 for no limit); monthly no limit; over a limit: defer"},
		{"other keys set", "budget:\n  monthly: 100\n", nil, 5, "budget: daily $5.00 (the default; raise budget.daily in the config, or set it to 0 for no limit); monthly $100.00"},
		{"zero in the file", "budget:\n  daily: 0\n", nil, 0, "budget: daily no limit; monthly no limit"},
		{"raised in the file", "budget:\n  daily: 40\n  on_limit: skip\n", nil, 40, "budget: daily $40.00; monthly no limit; over a limit: skip"},
		{"zero in the environment", "budget:\n  daily: 40\n", map[string]string{"HOOKWISE_BUDGET_DAILY": "0"}, 0, "budget: daily no limit"},
		{"scopes", "budget:\n  scopes:\n    - match: org:acme\n      daily: 2\n", nil, 5, "; 1 scoped budgets;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, tt.yaml, tt.env)
			if c.Budget.Daily != tt.want {
				t.Errorf("Load(%q).Budget.Daily = %v, want %v", tt.yaml, c.Budget.Daily, tt.want)
			}
			if got := c.BudgetSummary(); !strings.Contains(got, tt.wantSummary) {
				t.Errorf("BudgetSummary() = %q, want it to contain %q", got, tt.wantSummary)
			}
		})
	}
}
