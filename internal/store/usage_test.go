package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// nowLimit is a limit on scope over a period around now, which is when
// Reserve dates its rows.
func nowLimit(scope string, micros int64) store.Limit {
	now := time.Now()
	return store.Limit{Scope: scope, Period: "day " + now.UTC().Format(time.DateOnly),
		Start: now.Add(-time.Hour), End: now.Add(time.Hour), Micros: micros}
}

func usageCall(delivery int64, repo string, installation, estimate int64) store.UsageCall {
	owner, _, _ := strings.Cut(repo, "/")
	return store.UsageCall{DeliveryID: delivery, Repo: repo, Owner: owner, InstallationID: installation,
		Thread: repo + "#1", Event: "issues.opened", Kind: "issue", Model: "claude-sonnet-4-5", EstimateMicros: estimate}
}

func reserve(t *testing.T, st *store.Store, call store.UsageCall, ttl time.Duration, limits ...store.Limit) int64 {
	t.Helper()
	id, err := st.Reserve(context.Background(), call, limits, ttl)
	if err != nil {
		t.Fatalf("Reserve(%d micros): %v", call.EstimateMicros, err)
	}
	if id == 0 {
		t.Fatalf("Reserve(%d micros) id = 0, want the new row's id", call.EstimateMicros)
	}
	return id
}

func spent(t *testing.T, st *store.Store, l store.Limit) int64 {
	t.Helper()
	n, err := st.Spent(context.Background(), l)
	if err != nil {
		t.Fatalf("Spent(%s): %v", l.Scope, err)
	}
	return n
}

func TestReserveWithinLimits(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		global := nowLimit("global", 1_000)
		reserve(t, st, usageCall(1, "acme/app", 42, 600), time.Hour, global)
		if got := spent(t, st, global); got != 600 {
			t.Errorf("Spent(global) after reserving 600 = %d, want 600", got)
		}
		// Reaching the limit exactly is allowed; only going past it is not.
		reserve(t, st, usageCall(2, "acme/app", 42, 400), time.Hour, global)
		if got := spent(t, st, global); got != 1_000 {
			t.Errorf("Spent(global) after reserving 600 and 400 = %d, want 1000", got)
		}
	})
}

func TestReserveOverBudget(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		global, repo := nowLimit("global", 10_000), nowLimit("repo:acme/app", 1_000)
		reserve(t, st, usageCall(1, "acme/app", 42, 700), time.Hour, global, repo)

		_, err := st.Reserve(ctx, usageCall(2, "acme/app", 42, 301), []store.Limit{global, repo}, time.Hour)
		var over *store.OverBudget
		if !errors.As(err, &over) {
			t.Fatalf("Reserve(301 over 700 of 1000) error = %v, want *store.OverBudget", err)
		}
		if over.Limit != repo || over.Spent != 700 || over.Estimate != 301 {
			t.Errorf("OverBudget = {%s %d %d}, want {%s 700 301}", over.Limit.Scope, over.Spent, over.Estimate, repo.Scope)
		}
		if over.Error() == "" {
			t.Error("OverBudget.Error() = \"\", want a message")
		}
		if got := spent(t, st, global); got != 700 {
			t.Errorf("Spent(global) after a refused reservation = %d, want 700 (nothing written)", got)
		}
		rows, err := st.UsageOf(ctx, 2)
		if err != nil || len(rows) != 0 {
			t.Errorf("UsageOf(refused delivery) = %v, %v; want no rows", rows, err)
		}
		// The other scope has room: a call of another repository passes.
		reserve(t, st, usageCall(3, "acme/lib", 42, 301), time.Hour, global, nowLimit("repo:acme/lib", 1_000))
	})
}

func TestSettle(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		global := nowLimit("global", 1_000_000)
		id := reserve(t, st, usageCall(1, "acme/app", 42, 5_000), time.Hour, global)
		if err := st.Settle(ctx, id, store.Settlement{Model: "claude-sonnet-4-5", Outcome: "ok", Micros: 1_234}); err != nil {
			t.Fatal(err)
		}
		if got := spent(t, st, global); got != 1_234 {
			t.Errorf("Spent after settling a 5000 estimate at 1234 = %d, want 1234", got)
		}
		// A settled cost counts after its reservation would have expired.
		id = reserve(t, st, usageCall(2, "acme/app", 42, 5_000), -time.Second, global)
		if err := st.Settle(ctx, id, store.Settlement{Model: "claude-sonnet-4-5", Outcome: "ok", Micros: 66}); err != nil {
			t.Fatal(err)
		}
		if got := spent(t, st, global); got != 1_300 {
			t.Errorf("Spent with a settled row past its expiry = %d, want 1300", got)
		}
	})
}

// TestOverdueReservation: a reservation left unsettled past its expiry
// (its worker crashed) keeps counting, since its call may have been billed;
// only settling it replaces the estimate.
func TestOverdueReservation(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		global := nowLimit("global", 2_000)
		reserve(t, st, usageCall(1, "acme/app", 42, 900), -time.Second, global)
		if got := spent(t, st, global); got != 900 {
			t.Errorf("Spent with a reservation overdue by a second = %d, want 900", got)
		}
		id := reserve(t, st, usageCall(2, "acme/app", 42, 900), 5*time.Millisecond, global)
		time.Sleep(20 * time.Millisecond)
		if got := spent(t, st, global); got != 1_800 {
			t.Errorf("Spent with a 5ms reservation 20ms later = %d, want 1800", got)
		}
		var over *store.OverBudget
		if _, err := st.Reserve(ctx, usageCall(3, "acme/app", 42, 201), []store.Limit{global}, time.Hour); !errors.As(err, &over) {
			t.Errorf("Reserve(201 over 1800 of 2000, overdue reservations included) error = %v, want *store.OverBudget", err)
		}
		if err := st.Settle(ctx, id, store.Settlement{Model: "claude-sonnet-4-5", Outcome: "ok", Micros: 100}); err != nil {
			t.Fatal(err)
		}
		if got := spent(t, st, global); got != 1_000 {
			t.Errorf("Spent after settling an overdue reservation at 100 = %d, want 1000", got)
		}
	})
}

func TestSpentScopes(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		for _, c := range []store.UsageCall{
			usageCall(1, "Acme/App", 42, 1),
			usageCall(2, "acme/app", 42, 10),
			usageCall(3, "acme/lib", 42, 100),
			usageCall(4, "acme/lib", 7, 1_000),
			usageCall(5, "other/app", 7, 10_000),
		} {
			reserve(t, st, c, time.Hour)
		}
		tests := []struct {
			scope string
			want  int64
		}{
			{"global", 11_111},
			{"repo:acme/app", 11},
			{"repo:ACME/app", 11},
			{"repo:acme/lib", 1_100},
			{"repo:acme/none", 0},
			{"org:acme", 1_111},
			{"org:ACME", 1_111},
			{"org:other", 10_000},
			{"installation:42", 111},
			{"installation:7", 11_000},
			{"installation:8", 0},
		}
		for _, tt := range tests {
			if got := spent(t, st, nowLimit(tt.scope, 0)); got != tt.want {
				t.Errorf("Spent(%s) = %d, want %d", tt.scope, got, tt.want)
			}
		}
		for _, scope := range []string{"installation:x", "team:acme", ""} {
			if got, err := st.Spent(context.Background(), nowLimit(scope, 0)); err == nil {
				t.Errorf("Spent(%q) = %d, nil; want an error", scope, got)
			}
		}
	})
}

func TestSpentPeriod(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		now := time.Now()
		reserve(t, st, usageCall(1, "acme/app", 42, 500), time.Hour)
		yesterday := store.Limit{Scope: "global", Period: "day yesterday", Start: now.Add(-48 * time.Hour), End: now.Add(-24 * time.Hour), Micros: 100}
		tomorrow := store.Limit{Scope: "global", Period: "day tomorrow", Start: now.Add(24 * time.Hour), End: now.Add(48 * time.Hour), Micros: 100}
		ending := store.Limit{Scope: "global", Period: "ended just now", Start: now.Add(-time.Hour), End: now.Add(-time.Minute), Micros: 100}
		for _, l := range []store.Limit{yesterday, tomorrow, ending} {
			if got := spent(t, st, l); got != 0 {
				t.Errorf("Spent(%s) = %d, want 0 (the row is outside the period)", l.Period, got)
			}
		}
		if got := spent(t, st, nowLimit("global", 100)); got != 500 {
			t.Errorf("Spent(today) = %d, want 500", got)
		}
		// Other periods' limits do not stop a call, today's does.
		reserve(t, st, usageCall(2, "acme/app", 42, 100), time.Hour, yesterday, tomorrow)
		var over *store.OverBudget
		if _, err := st.Reserve(context.Background(), usageCall(3, "acme/app", 42, 1), []store.Limit{nowLimit("global", 600)}, time.Hour); !errors.As(err, &over) {
			t.Errorf("Reserve(1 over 600 of 600 today) error = %v, want *store.OverBudget", err)
		}
	})
}

// TestReserveConcurrent races 20 reservations against one limit: however
// they interleave, the reserved estimates never add up past it. On
// PostgreSQL it runs with two store handles as well, which is what two
// instances of hookwise are; a SQLite file has one serving process.
func TestReserveConcurrent(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, engine, url string) {
		type instances struct {
			name   string
			stores []*store.Store
		}
		a := openURL(t, url)
		runs := []instances{{"one instance", []*store.Store{a}}}
		if engine == "postgres" {
			runs = append(runs, instances{"two instances", []*store.Store{a, openURL(t, url)}})
		}
		for i, in := range runs {
			t.Run(in.name, func(t *testing.T) {
				// Each run has its own repository, and its limit that scope.
				limit := nowLimit(fmt.Sprintf("repo:acme/race%d", i), 10_000)
				const estimate = 1_000
				var wg sync.WaitGroup
				ids := make([]int64, 20)
				errs := make([]error, 20)
				for g := range ids {
					st := in.stores[g%len(in.stores)]
					wg.Go(func() {
						ids[g], errs[g] = st.Reserve(context.Background(),
							usageCall(int64(g+1), fmt.Sprintf("acme/race%d", i), 42, estimate), []store.Limit{limit}, time.Hour)
					})
				}
				wg.Wait()
				reserved := 0
				for g, err := range errs {
					var over *store.OverBudget
					switch {
					case err == nil:
						reserved++
					case errors.As(err, &over):
						if over.Spent+estimate <= limit.Micros {
							t.Errorf("goroutine %d refused at %d spent of %d, want a refusal only past the limit", g, over.Spent, limit.Micros)
						}
					default:
						t.Errorf("goroutine %d: Reserve = %v, want nil or *store.OverBudget", g, err)
					}
				}
				if reserved*estimate > int(limit.Micros) {
					t.Errorf("%d concurrent reservations of %d went through = %d, want at most the limit %d",
						reserved, estimate, reserved*estimate, limit.Micros)
				}
				if reserved != 10 {
					t.Errorf("%d of 20 reservations of 1000 against 10000 went through, want 10", reserved)
				}
				for _, st := range in.stores {
					if got := spent(t, st, limit); got != int64(reserved*estimate) {
						t.Errorf("Spent(%s) = %d, want %d (the reservations that went through)", limit.Scope, got, reserved*estimate)
					}
				}
			})
		}
	})
}

func TestRecordAlert(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		l := store.Limit{Scope: "global", Period: "month 2026-11", Micros: 1_000}
		steps := []struct {
			l         store.Limit
			threshold int
			want      bool
		}{
			{l, 50, true},
			{l, 50, false}, // fired already
			{l, 80, true},  // another threshold
			{store.Limit{Scope: "global", Period: "month 2026-12", Micros: 1_000}, 50, true},   // another period
			{store.Limit{Scope: "org:acme", Period: "month 2026-11", Micros: 1_000}, 50, true}, // another scope
			{l, 80, false},
		}
		for i, s := range steps {
			got, err := st.RecordAlert(ctx, s.l, s.threshold, 600)
			if err != nil || got != s.want {
				t.Errorf("step %d: RecordAlert(%s, %s, %d%%) = %v, %v; want %v", i, s.l.Scope, s.l.Period, s.threshold, got, err, s.want)
			}
		}
	})
}

// TestRecordAlertConcurrent: each threshold fires once however many
// workers, and on PostgreSQL instances, see it crossed together.
func TestRecordAlertConcurrent(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, engine, url string) {
		stores := []*store.Store{openURL(t, url)}
		if engine == "postgres" {
			stores = append(stores, openURL(t, url)) // a second instance
		}
		l := store.Limit{Scope: "repo:acme/app", Period: "day 2026-11-29", Micros: 1_000}
		var wg sync.WaitGroup
		first := make([]bool, 10)
		errs := make([]error, 10)
		for g := range first {
			st := stores[g%len(stores)]
			wg.Go(func() { first[g], errs[g] = st.RecordAlert(context.Background(), l, 80, 900) })
		}
		wg.Wait()
		n := 0
		for g := range first {
			if errs[g] != nil {
				t.Errorf("goroutine %d: RecordAlert = %v", g, errs[g])
			}
			if first[g] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("10 concurrent RecordAlert(same scope, period, threshold) returned true %d times, want 1", n)
		}
		for i, st := range stores {
			if got, err := st.RecordAlert(context.Background(), l, 80, 900); got || err != nil {
				t.Errorf("handle %d: RecordAlert after the race = %v, %v; want false, nil", i, got, err)
			}
		}
	})
}

func TestAlerts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		l := store.Limit{Scope: "global", Period: "month 2026-11", Micros: 1_000}
		for _, threshold := range []int{50, 80, 100} {
			if _, err := st.RecordAlert(ctx, l, threshold, int64(threshold)*10); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // created_at orders the list, in milliseconds
		}
		alert := func(threshold int) store.AlertRow {
			return store.AlertRow{Scope: l.Scope, Period: l.Period, Threshold: threshold}
		}
		if err := st.MarkAlert(ctx, alert(50), nil); err != nil {
			t.Fatal(err)
		}
		if err := st.MarkAlert(ctx, alert(80), errors.New("webhook said 500")); err != nil {
			t.Fatal(err)
		}
		list := func(unsentOnly bool, maxAttempts int) []store.AlertRow {
			t.Helper()
			rows, err := st.Alerts(ctx, unsentOnly, maxAttempts)
			if err != nil {
				t.Fatalf("Alerts(%v, %d): %v", unsentOnly, maxAttempts, err)
			}
			return rows
		}
		want := []store.AlertRow{
			{Scope: "global", Period: "month 2026-11", Threshold: 100, Spent: 1_000, Limit: 1_000},
			{Scope: "global", Period: "month 2026-11", Threshold: 80, Spent: 800, Limit: 1_000, Attempts: 1, LastError: "webhook said 500"},
			{Scope: "global", Period: "month 2026-11", Threshold: 50, Spent: 500, Limit: 1_000, Sent: true, Attempts: 1},
		}
		if got := list(false, 0); !slices.Equal(got, want) {
			t.Errorf("Alerts(all) = %+v, want %+v", got, want)
		}
		if got := list(true, 3); !slices.Equal(got, want[:2]) {
			t.Errorf("Alerts(unsent, 3 attempts) = %+v, want %+v", got, want[:2])
		}
		if got := list(true, 1); !slices.Equal(got, want[:1]) {
			t.Errorf("Alerts(unsent, 1 attempt) = %+v, want %+v", got, want[:1])
		}
		// A later success clears the error.
		if err := st.MarkAlert(ctx, alert(80), nil); err != nil {
			t.Fatal(err)
		}
		if got := list(true, 3); !slices.Equal(got, want[:1]) {
			t.Errorf("Alerts(unsent) after sending 80%% = %+v, want %+v", got, want[:1])
		}
		want[1].Sent, want[1].Attempts, want[1].LastError = true, 2, ""
		if got := list(false, 0); !slices.Equal(got, want) {
			t.Errorf("Alerts(all) after sending 80%% = %+v, want %+v", got, want)
		}
	})
}

func TestDeferAndResume(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		d := func(guid string) store.Delivery {
			return store.Delivery{HookID: "1", GUID: guid, Event: "issues", Repo: "acme/app", Payload: []byte(`{}`), ReceivedAt: time.Now()}
		}
		ids := insert(t, st, d("due1"), d("later"), d("due2"), d("queued"))
		now := time.Now()
		for _, x := range []struct {
			id     int64
			resume time.Time
		}{{ids[0], now.Add(-time.Second)}, {ids[1], now.Add(time.Hour)}, {ids[2], now.Add(-time.Minute)}} {
			if err := st.Defer(ctx, x.id, x.resume, "budget day for global spent"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Delivery(ctx, ids[0])
		if err != nil || got.Status != store.StatusDeferred || got.Reason != "budget day for global spent" {
			t.Errorf("Delivery(deferred) = %q %q, %v; want %q with the reason", got.Status, got.Reason, err, store.StatusDeferred)
		}
		resume := func(limit int) []int64 {
			t.Helper()
			var ids []int64
			err := st.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				ids, err = st.ResumeDueTx(ctx, tx, limit)
				return err
			})
			if err != nil {
				t.Fatalf("ResumeDueTx(%d): %v", limit, err)
			}
			return ids
		}
		if got := resume(1); !slices.Equal(got, ids[:1]) {
			t.Errorf("ResumeDueTx(1) = %v, want %v", got, ids[:1])
		}
		if got := resume(10); !slices.Equal(got, ids[2:3]) {
			t.Errorf("ResumeDueTx(10) = %v, want %v (the other due one)", got, ids[2:3])
		}
		if got := resume(10); len(got) != 0 {
			t.Errorf("ResumeDueTx(10) again = %v, want none (the rest is not due)", got)
		}
		for i, want := range []struct {
			status   string
			resumeAt bool
		}{{store.StatusQueued, false}, {store.StatusDeferred, true}, {store.StatusQueued, false}, {store.StatusQueued, false}} {
			var status string
			var resumeAt int64
			if err := st.DB.QueryRowContext(ctx, st.Rebind(`SELECT status, resume_at FROM hw_deliveries WHERE id = ?`), ids[i]).
				Scan(&status, &resumeAt); err != nil {
				t.Fatal(err)
			}
			if status != want.status || (resumeAt != 0) != want.resumeAt {
				t.Errorf("delivery %d: status, resume_at = %q, %d; want %q, set %v", i, status, resumeAt, want.status, want.resumeAt)
			}
		}
	})
}

func TestUsageOf(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		before := time.Now().Add(-time.Second)
		first := reserve(t, st, usageCall(7, "acme/app", 42, 5_000), time.Hour)
		batch := usageCall(7, "acme/app", 42, 2_500)
		batch.Batch, batch.Model = true, "claude-haiku-4-5"
		reserve(t, st, batch, time.Hour)
		reserve(t, st, usageCall(8, "acme/app", 42, 9), time.Hour)
		err := st.Settle(ctx, first, store.Settlement{Model: "claude-opus-4-1", Outcome: "ok", Input: 100, Output: 20,
			CacheWrite: 300, CacheRead: 400, Micros: 1_234, Latency: 1500 * time.Millisecond, RequestID: "req_1"})
		if err != nil {
			t.Fatal(err)
		}
		rows, err := st.UsageOf(ctx, 7)
		if err != nil {
			t.Fatalf("UsageOf(7): %v", err)
		}
		for _, r := range rows {
			if r.At.Before(before) || r.At.After(time.Now().Add(time.Second)) {
				t.Errorf("UsageOf(7) row at %v, want about now", r.At)
			}
		}
		var got []store.UsageRow
		for _, r := range rows {
			r.At = time.Time{}
			got = append(got, r)
		}
		want := []store.UsageRow{
			{Model: "claude-opus-4-1", Outcome: "ok", EstimateMicros: 5_000, Input: 100, Output: 20, CacheWrite: 300,
				CacheRead: 400, CostMicros: 1_234, Latency: 1500 * time.Millisecond, RequestID: "req_1"},
			{Model: "claude-haiku-4-5", Batch: true, Outcome: "reserved", EstimateMicros: 2_500},
		}
		if !slices.Equal(got, want) {
			t.Errorf("UsageOf(7) = %+v, want %+v", got, want)
		}
		if rows, err := st.UsageOf(ctx, 99); err != nil || len(rows) != 0 {
			t.Errorf("UsageOf(99) = %+v, %v; want none", rows, err)
		}
	})
}
