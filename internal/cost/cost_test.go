package cost

import "testing"

func TestMicros(t *testing.T) {
	tests := []struct {
		model string
		u     Usage
		want  int64
	}{
		{"claude-sonnet-4-5-20250929", Usage{Input: 1_000_000}, 3_000_000},
		{"claude-sonnet-4-5", Usage{Input: 1000, Output: 500, CacheWrite: 2000, CacheRead: 10000}, 3000 + 7500 + 7500 + 3000},
		{"claude-haiku-4-5", Usage{Output: 1_000_000}, 5_000_000},
		{"claude-opus-4-5-20251101", Usage{Input: 1_000_000}, 5_000_000},
		{"claude-opus-4-1", Usage{Input: 1_000_000}, 15_000_000},
		{"some-future-model", Usage{Input: 1_000_000}, 3_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			if got := For(tt.model).Micros(tt.u); got != tt.want {
				t.Errorf("For(%q).Micros(%+v) = %d, want %d", tt.model, tt.u, got, tt.want)
			}
		})
	}
}
