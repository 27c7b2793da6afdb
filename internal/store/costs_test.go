package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// costLedgerRow is one hw_usage row as a test writes it.
type costLedgerRow struct {
	at                                time.Time
	repo, event, kind, model, outcome string
	batch                             bool
	in, out, cacheWrite, cacheRead    int64
	micros                            int64
}

func insertCostLedger(t *testing.T, st *store.Store, rows ...costLedgerRow) {
	t.Helper()
	for i, r := range rows {
		owner, _, _ := strings.Cut(r.repo, "/")
		batch := 0
		if r.batch {
			batch = 1
		}
		_, err := st.DB.Exec(st.Rebind(`INSERT INTO hw_usage (created_at, settled_at, expires_at, delivery_id, repo, owner,
			thread, event, kind, model, batch, outcome, estimate_micros, input_tokens, output_tokens,
			cache_write_tokens, cache_read_tokens, cost_micros)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			r.at.UnixMilli(), r.at.UnixMilli(), r.at.Add(time.Hour).UnixMilli(), i+1, r.repo, owner,
			r.repo+"#1", r.event, r.kind, r.model, batch, r.outcome, 99_999_999,
			r.in, r.out, r.cacheWrite, r.cacheRead, r.micros)
		if err != nil {
			t.Fatalf("insert usage row %d: %v", i, err)
		}
	}
}

func costDay(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }

// costFixture is a ledger over three UTC days and two repositories, with a
// reservation that must never be counted.
func costFixture(t *testing.T, st *store.Store) {
	t.Helper()
	insertCostLedger(t, st,
		costLedgerRow{at: costDay(27, 0), repo: "acme/app", event: "issues.opened", kind: "issue", model: "claude-sonnet-4-5",
			outcome: "ok", in: 100, out: 10, cacheWrite: 1000, micros: 1_000},
		costLedgerRow{at: costDay(27, 23).Add(59*time.Minute + 59*time.Second), repo: "acme/app", event: "issues.opened", kind: "issue",
			model: "claude-haiku-4-5", outcome: "ok", in: 200, out: 20, cacheRead: 1000, micros: 500, batch: true},
		costLedgerRow{at: costDay(28, 0), repo: "acme/lib", event: "pull_request.opened", kind: "review", model: "claude-sonnet-4-5",
			outcome: "ok", in: 300, out: 30, cacheRead: 2000, micros: 5_000},
		costLedgerRow{at: costDay(28, 12), repo: "acme/app", event: "pull_request.opened", kind: "review", model: "claude-sonnet-4-5",
			outcome: "invalid_output", in: 400, out: 40, micros: 2_000},
		costLedgerRow{at: costDay(29, 1), repo: "acme/lib", event: "issues.opened", kind: "issue", model: "claude-haiku-4-5",
			outcome: "rate_limit_error", micros: 0},
		// Not settled yet: its estimate is no cost.
		costLedgerRow{at: costDay(28, 6), repo: "acme/app", event: "issues.opened", kind: "issue", model: "claude-sonnet-4-5",
			outcome: "reserved", in: 7, out: 7, micros: 7_000_000},
	)
}

func TestCosts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		costFixture(t, st)
		type row struct {
			key                  string
			calls, in, cacheRead int64
			micros, batchCalls   int64
		}
		tests := []struct {
			name      string
			q         store.CostQuery
			want      []row
			wantTotal row
		}{
			{"total", store.CostQuery{},
				[]row{{"", 5, 1000, 3000, 8_500, 1}}, row{"", 5, 1000, 3000, 8_500, 1}},
			{"by day", store.CostQuery{By: "day"},
				[]row{{"2026-11-27", 2, 300, 1000, 1_500, 1}, {"2026-11-28", 2, 700, 2000, 7_000, 0}, {"2026-11-29", 1, 0, 0, 0, 0}},
				row{"", 5, 1000, 3000, 8_500, 1}},
			{"by repo", store.CostQuery{By: "repo"},
				[]row{{"acme/lib", 2, 300, 2000, 5_000, 0}, {"acme/app", 3, 700, 1000, 3_500, 1}},
				row{"", 5, 1000, 3000, 8_500, 1}},
			{"by model", store.CostQuery{By: "model"},
				[]row{{"claude-sonnet-4-5", 3, 800, 2000, 8_000, 0}, {"claude-haiku-4-5", 2, 200, 1000, 500, 1}},
				row{"", 5, 1000, 3000, 8_500, 1}},
			{"by event", store.CostQuery{By: "event"},
				[]row{{"pull_request.opened", 2, 700, 2000, 7_000, 0}, {"issues.opened", 3, 300, 1000, 1_500, 1}},
				row{"", 5, 1000, 3000, 8_500, 1}},
			{"by kind", store.CostQuery{By: "kind"},
				[]row{{"review", 2, 700, 2000, 7_000, 0}, {"issue", 3, 300, 1000, 1_500, 1}},
				row{"", 5, 1000, 3000, 8_500, 1}},
			{"window is half-open", store.CostQuery{By: "day", Since: costDay(27, 1), Until: costDay(29, 1)},
				[]row{{"2026-11-27", 1, 200, 1000, 500, 1}, {"2026-11-28", 2, 700, 2000, 7_000, 0}},
				row{"", 3, 900, 3000, 7_500, 1}},
			{"repo", store.CostQuery{By: "day", Repo: "acme/app"},
				[]row{{"2026-11-27", 2, 300, 1000, 1_500, 1}, {"2026-11-28", 1, 400, 0, 2_000, 0}},
				row{"", 3, 700, 1000, 3_500, 1}},
			{"repo and window", store.CostQuery{By: "model", Repo: "acme/lib", Since: costDay(28, 0)},
				[]row{{"claude-sonnet-4-5", 1, 300, 2000, 5_000, 0}, {"claude-haiku-4-5", 1, 0, 0, 0, 0}},
				row{"", 2, 300, 2000, 5_000, 0}},
			{"nothing matches", store.CostQuery{By: "repo", Repo: "nobody/none"}, nil, row{}},
			{"total of nothing", store.CostQuery{Since: costDay(30, 0)}, []row{{}}, row{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rows, total, err := st.Costs(context.Background(), tt.q)
				if err != nil {
					t.Fatalf("Costs(%+v): %v", tt.q, err)
				}
				conv := func(r store.CostRow) row {
					return row{r.Key, r.Calls, r.InputTokens, r.CacheReadTokens, r.CostMicros, r.BatchCalls}
				}
				var got []row
				for _, r := range rows {
					got = append(got, conv(r))
					if r.CostUSD != float64(r.CostMicros)/1e6 {
						t.Errorf("Costs(%+v) row %q CostUSD = %v, want %v", tt.q, r.Key, r.CostUSD, float64(r.CostMicros)/1e6)
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("Costs(%+v) rows = %v, want %v", tt.q, got, tt.want)
				}
				if conv(total) != tt.wantTotal {
					t.Errorf("Costs(%+v) total = %v, want %v", tt.q, conv(total), tt.wantTotal)
				}
			})
		}
	})
}

func TestCostsSumsEveryColumn(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		costFixture(t, st)
		rows, total, err := st.Costs(context.Background(), store.CostQuery{By: "repo", Repo: "acme/app"})
		if err != nil {
			t.Fatal(err)
		}
		want := store.CostRow{Key: "acme/app", Calls: 3, InputTokens: 700, OutputTokens: 70, CacheWriteTokens: 1000,
			CacheReadTokens: 1000, CostMicros: 3_500, CostUSD: 0.0035, BatchCalls: 1}
		if len(rows) != 1 || rows[0] != want {
			t.Errorf("Costs(by repo, acme/app) = %+v, want [%+v]", rows, want)
		}
		want.Key = ""
		if total != want {
			t.Errorf("Costs(by repo, acme/app) total = %+v, want %+v", total, want)
		}
	})
}

func TestCostsBadGroup(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		_, _, err := st.Costs(context.Background(), store.CostQuery{By: "week"})
		if err == nil {
			t.Fatal(`Costs(By: "week") = nil error, want one naming the allowed values`)
		}
		for _, want := range []string{`"week"`, "day", "repo", "model", "event", "kind"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf(`Costs(By: "week") error = %q, want it to contain %s`, err, want)
			}
		}
	})
}
