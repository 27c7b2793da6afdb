package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

func TestPrune(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		old, recent := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
		type row struct {
			guid     string
			received time.Time
			status   string
			kept     bool
		}
		rows := []row{
			{"old-done", old, store.StatusDone, false},
			{"old-skipped", old, store.StatusSkipped, false},
			{"old-discarded", old, store.StatusDiscarded, false},
			{"old-failed", old, store.StatusFailed, true}, // a dead letter, kept until handled
			{"old-queued", old, store.StatusQueued, true}, // still in progress
			{"old-deferred", old, store.StatusDeferred, true},
			{"recent-done", recent, store.StatusDone, true},
		}
		ids := map[string]int64{}
		for _, r := range rows {
			id := insert(t, st, store.Delivery{HookID: "1", GUID: r.guid, Event: "issues", Repo: "acme/app",
				Payload: []byte(`{}`), ReceivedAt: r.received})[0]
			ids[r.guid] = id
			if err := st.SetDeliveryStatus(ctx, id, r.status, ""); err != nil {
				t.Fatal(err)
			}
			if err := st.SaveAnalysis(ctx, store.Analysis{DeliveryID: id, Repo: "acme/app", Thread: 1, Kind: "issue",
				Model: "m", Result: "{}"}); err != nil {
				t.Fatal(err)
			}
		}
		// Ledger rows: one from 40 days ago, one now.
		for _, at := range []time.Time{old, now} {
			if _, err := st.DB.ExecContext(ctx, st.Rebind(`INSERT INTO hw_usage (created_at, expires_at, delivery_id, repo, owner,
				thread, event, kind, model, estimate_micros, outcome, cost_micros) VALUES (?, ?, 1, 'acme/app', 'acme', 't', 'e', 'k', 'm', 10, 'ok', 10)`),
				at.UnixMilli(), at.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}

		pruned, err := st.Prune(ctx, now.Add(-30*24*time.Hour), now.Add(-32*24*time.Hour))
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if pruned["hw_deliveries"] != 3 || pruned["hw_analyses"] != 3 || pruned["hw_usage"] != 1 {
			t.Errorf("Prune = %v, want 3 deliveries, 3 analyses and 1 ledger row", pruned)
		}
		for _, r := range rows {
			_, err := st.Delivery(ctx, ids[r.guid])
			if got := err == nil; got != r.kept {
				t.Errorf("delivery %s (%s) kept = %v, want %v", r.guid, r.status, got, r.kept)
			}
			_, err = st.Analysis(ctx, ids[r.guid])
			if got := err == nil; got != r.kept {
				t.Errorf("analysis of %s kept = %v, want %v", r.guid, got, r.kept)
			}
		}
		var left int
		if err := st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM hw_usage`).Scan(&left); err != nil || left != 1 {
			t.Errorf("ledger rows left = %d, %v; want the recent one", left, err)
		}
		again, err := st.Prune(ctx, now.Add(-30*24*time.Hour), now.Add(-32*24*time.Hour))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(store.Pruned{"hw_alerts": 0, "hw_analyses": 0, "hw_author_admissions": 0, "hw_author_locks": 0,
			"hw_batch_items": 0, "hw_deliveries": 0, "hw_thread_locks": 0, "hw_threads": 0, "hw_usage": 0, "hw_writes": 0}) {
			t.Errorf("second Prune = %v, %v; want nothing left to prune", again, err)
		}
	})
}
