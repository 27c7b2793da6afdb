package main

import (
	"context"
	"github.com/hookwise/hookwise/internal/logtest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/app"
)

// costsDB points the commands at a new database holding a small usage
// ledger: settled calls on two repositories in November 2025, one settled
// today, and a reservation that must not be counted.
func costsDB(t *testing.T) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "hookwise.db")
	t.Setenv("HOOKWISE_DATABASE_URL", db)
	t.Setenv("HOOKWISE_CONFIG", "")
	ctx := context.Background()
	st, err := app.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nov := func(day int) int64 { return time.Date(2025, 11, day, 12, 0, 0, 0, time.UTC).UnixMilli() }
	for i, r := range []struct {
		at                           int64
		repo, model, outcome         string
		in, out, cacheWrite, cacheRd int64
		micros                       int64
	}{
		{nov(2), "acme/app", "claude-sonnet-4-5", "ok", 1000, 100, 2000, 0, 12_345},
		{nov(2), "acme/lib", "claude-haiku-4-5", "ok", 500, 50, 0, 2500, 1_000},
		{nov(3), "acme/app", "claude-sonnet-4-5", "rate_limit_error", 0, 0, 0, 0, 0},
		{nov(3), "acme/app", "claude-sonnet-4-5", "reserved", 9999, 9999, 0, 0, 9_999_999},
		{time.Now().UnixMilli(), "acme/now", "claude-sonnet-4-5", "ok", 10, 1, 0, 0, 70},
	} {
		_, err := st.DB.Exec(`INSERT INTO hw_usage (created_at, expires_at, delivery_id, repo, owner, thread,
			event, kind, model, outcome, estimate_micros, input_tokens, output_tokens, cache_write_tokens,
			cache_read_tokens, cost_micros)
			VALUES (?, ?, ?, ?, 'acme', ?, 'issues.opened', 'issue', ?, ?, 0, ?, ?, ?, ?, ?)`,
			r.at, r.at, i+1, r.repo, r.repo+"#1", r.model, r.outcome, r.in, r.out, r.cacheWrite, r.cacheRd, r.micros)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fields splits output into lines of whitespace-separated fields.
func fields(out string) [][]string {
	var lines [][]string
	for l := range strings.Lines(out) {
		lines = append(lines, strings.Fields(l))
	}
	return lines
}

func TestCostsCommand(t *testing.T) {
	costsDB(t)
	tests := []struct {
		args []string
		want []string // the lines, fields joined by one space
	}{
		{[]string{"--since", "2025-11-01", "--until", "2025-11-30"}, []string{
			"DAY CALLS INPUT OUTPUT CACHE WRITE CACHE READ COST",
			"2025-11-02 2 1500 150 2000 2500 $0.0133",
			"2025-11-03 1 0 0 0 0 $0.0000",
			"TOTAL 3 1500 150 2000 2500 $0.0133",
			"cache reads: 41.7% of input tokens (2500 of 6000)",
		}},
		{[]string{"--by", "repo", "--since", "2025-11-01", "--until", "2025-11-02"}, []string{
			"REPO CALLS INPUT OUTPUT CACHE WRITE CACHE READ COST",
			"acme/app 1 1000 100 2000 0 $0.0123",
			"acme/lib 1 500 50 0 2500 $0.0010",
			"TOTAL 2 1500 150 2000 2500 $0.0133",
			"cache reads: 41.7% of input tokens (2500 of 6000)",
		}},
		{[]string{"--by", "model", "--repo", "acme/lib", "--since", "2025-11-01"}, []string{
			"MODEL CALLS INPUT OUTPUT CACHE WRITE CACHE READ COST",
			"claude-haiku-4-5 1 500 50 0 2500 $0.0010",
			"TOTAL 1 500 50 0 2500 $0.0010",
			"cache reads: 83.3% of input tokens (2500 of 3000)",
		}},
		{[]string{"--by", "", "--since", "2025-11-03", "--until", "2025-11-03"}, []string{
			"KEY CALLS INPUT OUTPUT CACHE WRITE CACHE READ COST",
			"TOTAL 1 0 0 0 0 $0.0000",
			"cache reads: no input tokens",
		}},
		// The default window is the last 30 days: only today's call.
		{nil, []string{
			"DAY CALLS INPUT OUTPUT CACHE WRITE CACHE READ COST",
			time.Now().UTC().Format(time.DateOnly) + " 1 10 1 0 0 $0.0001",
			"TOTAL 1 10 1 0 0 $0.0001",
			"cache reads: 0.0% of input tokens (0 of 10)",
		}},
		{[]string{"--since", "720h", "--by", "repo"}, []string{
			"REPO CALLS INPUT OUTPUT CACHE WRITE CACHE READ COST",
			"acme/now 1 10 1 0 0 $0.0001",
			"TOTAL 1 10 1 0 0 $0.0001",
			"cache reads: 0.0% of input tokens (0 of 10)",
		}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut logtest.Buffer
			if err := run(append([]string{"costs"}, tt.args...), &out, &errOut); err != nil {
				t.Fatalf("costs %v: %v\n%s", tt.args, err, errOut.String())
			}
			var got []string
			for _, f := range fields(out.String()) {
				got = append(got, strings.Join(f, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("costs %v printed\n%s\nwant\n%s", tt.args, out.String(), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCostsCommandBadFlags(t *testing.T) {
	costsDB(t)
	tests := []struct {
		args []string
		want []string // in the error
	}{
		{[]string{"--by", "week"}, []string{`"week"`, "day, repo, model, event or kind"}},
		{[]string{"--since", "November"}, []string{"2026-11-01", "24h"}},
		{[]string{"--since", "-24h"}, []string{"--since", "positive"}},
		{[]string{"--until", "2026-11-31"}, []string{"--until", "2026-11-31"}},
		{[]string{"--since", "2026-11-02", "--until", "2026-11-01"}, []string{"--until", "no earlier than --since"}},
		{[]string{"extra"}, []string{"usage: hookwise costs"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut logtest.Buffer
			err := run(append([]string{"costs"}, tt.args...), &out, &errOut)
			if err == nil {
				t.Fatalf("costs %v = nil error, want one", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("costs %v = %q, want it to contain %q", tt.args, err, w)
				}
			}
		})
	}
}

// --since is a duration for redeliver and a date for costs; each form works
// for both, and redeliver's default stays 24h.
func TestSinceFlag(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		arg     string // "" for unset
		want    time.Duration
		wantStr string
	}{
		{"", 24 * time.Hour, ""},
		{"24h", 24 * time.Hour, "24h0m0s"},
		{"90m", 90 * time.Minute, "1h30m0s"},
		{"0s", 0, "0s"}, // redeliver refuses it, rather than taking the default
		{"2026-11-28", 36 * time.Hour, "2026-11-28"},
	}
	for _, tt := range tests {
		var f sinceFlag
		if tt.arg != "" {
			if err := f.Set(tt.arg); err != nil {
				t.Fatalf("Set(%q): %v", tt.arg, err)
			}
		}
		if got := f.duration(now, 24*time.Hour); got != tt.want {
			t.Errorf("--since %q: duration = %v, want %v", tt.arg, got, tt.want)
		}
		if f.String() != tt.wantStr {
			t.Errorf("--since %q: String() = %q, want %q", tt.arg, f.String(), tt.wantStr)
		}
	}
	var f sinceFlag
	if err := f.Set("yesterday"); err == nil {
		t.Error(`Set("yesterday") = nil, want an error`)
	}
}
