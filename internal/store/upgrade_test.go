package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
)

// v8Delivery is a delivery of the fixture testdata/v8.*.sql: a database
// hookwise at schema version 8 left behind (see testdata/v8fixture), with
// a delivery in every state one can be in. Each is an issues.opened of
// acme/app.
type v8Delivery struct {
	guid   string
	number int
	title  string
	status string
	reason string // a part of the stored reason
}

var v8Deliveries = []v8Delivery{
	{"v8-queued", 1, "Planner panics on an empty schedule", store.StatusQueued, ""},
	{"v8-dispatched", 2, "Scheduler skips jobs after a DST change", store.StatusQueued, ""},
	{"v8-running", 3, "Workers leak file descriptors on retry", store.StatusQueued, ""},
	{"v8-deferred", 4, "REST API returns 500 on a long job name", store.StatusDeferred, "for global: $0.0562 spent of $0.05"},
	{"v8-batch-pending", 5, "Docs: the cron syntax table is out of date", store.StatusBatched, "waiting for the Message Batches API"},
	{"v8-batch-submitted", 6, "Containers keep running after a job is cancelled", store.StatusBatched, "waiting for the Message Batches API"},
	{"v8-analysed", 7, "Retries ignore the max_attempts setting", store.StatusQueued, ""},
	{"v8-done", 8, "Job list pagination repeats the last page", store.StatusDone, "posted comment 9000008 on #8; labelled bug"},
	{"v8-skipped", 9, "Bump golang.org/x/net from 0.30.0 to 0.31.0", store.StatusSkipped, "bot: sent by a bot (dependabot[bot])"},
	{"v8-failed", 10, "Planner crash with a 3 MB schedule file", store.StatusFailed, "prompt is too long"},
}

// v8Tables are our tables at schema version 8.
var v8Tables = []string{"hw_deliveries", "hw_analyses", "hw_writes", "hw_thread_locks", "hw_health", "hw_threads",
	"hw_usage", "hw_budget_lock", "hw_alerts", "hw_batch_items", "hw_write_keys", "hw_write_slots"}

// openV8 loads the fixture into the empty database at url and opens it,
// not migrated.
func openV8(t *testing.T, url string) *store.Store {
	t.Helper()
	storetest.LoadFixture(t, url, "v8")
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func migrate(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	if err := st.MigrationLock(ctx, func() error { return st.Migrate(ctx) }); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

func rowCounts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range v8Tables {
		var n int
		if err := st.DB.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// The current hookwise migrates what version 8 left and reads every row of
// it with its own API: deliveries with their payloads, statuses and reasons,
// answers, the comment ledger, the usage ledger, threads, batch requests,
// alerts and leases.
func TestUpgradeFromV8KeepsEveryRow(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, engine, url string) {
		ctx := context.Background()
		st := openV8(t, url)
		before := rowCounts(t, st)
		if before["hw_deliveries"] != len(v8Deliveries) {
			t.Fatalf("fixture holds %d deliveries, want %d", before["hw_deliveries"], len(v8Deliveries))
		}
		migrate(t, st)
		after := rowCounts(t, st)
		for _, table := range v8Tables {
			if after[table] != before[table] {
				t.Errorf("%s: %d rows after the upgrade, %d before", table, after[table], before[table])
			}
		}
		if err := st.Ready(ctx); err != nil {
			t.Errorf("Ready after the upgrade = %v, want nil", err)
		}
		state, err := st.Schema(ctx)
		if newest := newestBuiltin(t); err != nil || state.Version != newest || state.Known != newest {
			t.Errorf("Schema after the upgrade = %+v, %v; want version %d, the newest this hookwise knows", state, err, newest)
		}

		ids := map[string]int64{}
		for _, want := range v8Deliveries {
			d, err := st.FindDelivery(ctx, want.guid)
			if err != nil {
				t.Errorf("FindDelivery(%s) = %v", want.guid, err)
				continue
			}
			ids[want.guid] = d.ID
			if d.Status != want.status || !strings.Contains(d.Reason, want.reason) {
				t.Errorf("%s: status %q, reason %q; want %q, with %q", want.guid, d.Status, d.Reason, want.status, want.reason)
			}
			var ev struct {
				Action string
				Issue  struct {
					Number int
					Title  string
				}
				Repository struct {
					FullName string `json:"full_name"`
				}
			}
			if err := json.Unmarshal(d.Payload, &ev); err != nil || ev.Action != "opened" || ev.Issue.Number != want.number ||
				ev.Issue.Title != want.title || ev.Repository.FullName != "acme/app" {
				t.Errorf("%s: payload = %.80q (%v); want issues.opened of acme/app#%d %q", want.guid, d.Payload, err, want.number, want.title)
			}
			if d.Event != "issues" || d.Action != "opened" || d.Repo != "acme/app" || d.HookID != "42" || d.ReceivedAt.IsZero() {
				t.Errorf("%s: delivery = %+v, want issues.opened of acme/app from hook 42", want.guid, d)
			}
		}

		// The answers stored for the delivery that was posted and for the
		// one whose comment failed, and their ledger rows.
		for _, guid := range []string{"v8-analysed", "v8-done"} {
			a, err := st.Analysis(ctx, ids[guid])
			var ans struct{ Classification, Summary string }
			if err != nil || json.Unmarshal([]byte(a.Result), &ans) != nil || ans.Classification != "bug" || ans.Summary == "" ||
				a.InputTokens != 2810 || a.CostMicros != 20_580 || a.Kind != "issue-analysis" {
				t.Errorf("Analysis(%s) = %+v, %v; want the stored bug triage", guid, a, err)
			}
			u, err := st.UsageOf(ctx, ids[guid])
			if err != nil || len(u) != 1 || u[0].Outcome != "ok" || u[0].CostMicros != 20_580 || u[0].Output != 402 {
				t.Errorf("UsageOf(%s) = %+v, %v; want one settled call of 20580 micros", guid, u, err)
			}
		}
		if _, err := st.Analysis(ctx, ids["v8-running"]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Analysis(v8-running) = %v, want ErrNotFound", err)
		}
		if u, err := st.UsageOf(ctx, ids["v8-running"]); err != nil || len(u) != 1 || u[0].Outcome != "reserved" || u[0].EstimateMicros != 15_000 {
			t.Errorf("UsageOf(v8-running) = %+v, %v; want its reservation", u, err)
		}
		if u, err := st.UsageOf(ctx, ids["v8-failed"]); err != nil || len(u) != 1 || u[0].Outcome != "invalid_request_error" {
			t.Errorf("UsageOf(v8-failed) = %+v, %v; want the refused call", u, err)
		}
		_, total, err := st.Costs(ctx, store.CostQuery{})
		if err != nil || total.Calls != 3 || total.CostMicros != 2*20_580 {
			t.Errorf("Costs = %+v, %v; want 3 settled calls, %d micros", total, err, 2*20_580)
		}
		w, err := st.WriteFor(ctx, "issue-analysis acme/app#8")
		if err != nil || w.CommentID != 9_000_008 || w.DeliveryID != ids["v8-done"] || w.Thread != 8 {
			t.Errorf("WriteFor(acme/app#8) = %+v, %v; want comment 9000008 of v8-done", w, err)
		}
		if _, err := st.WriteFor(ctx, "issue-analysis acme/app#7"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("WriteFor(acme/app#7) = %v, want ErrNotFound: its comment was never posted", err)
		}

		th, err := st.Thread(ctx, "acme/app#7")
		updated := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
		if err != nil || th.LatestDelivery != ids["v8-analysed"] || th.AnalysedDelivery != ids["v8-analysed"] ||
			!th.LatestUpdated.Equal(updated) || !th.AnalysedUpdated.Equal(updated) ||
			!strings.HasPrefix(th.AnalysedSubject, "Retries ignore the max_attempts setting\n\n") {
			t.Errorf("Thread(acme/app#7) = %+v, %v; want analysed by v8-analysed at %s", th, err, updated)
		}
		if th, err := st.Thread(ctx, "acme/app#3"); err != nil || th.LatestDelivery != ids["v8-running"] || th.AnalysedDelivery != 0 {
			t.Errorf("Thread(acme/app#3) = %+v, %v; want planned, not analysed", th, err)
		}
		// The crashed job's lease on its thread is still live.
		if ok, err := st.LockThread(ctx, "acme/app#3", "another-job", time.Minute); err != nil || ok {
			t.Errorf("LockThread(acme/app#3) by another job = %v, %v; want false: the lease of the job in progress holds", ok, err)
		}

		pending, err := st.BatchItemOf(ctx, ids["v8-batch-pending"])
		if err != nil || pending.State != store.BatchPending || pending.BatchID != "" || !strings.Contains(pending.Request, "issue #5 in acme/app") {
			t.Errorf("BatchItemOf(v8-batch-pending) = %+v, %v; want a pending request about #5", pending, err)
		}
		sub, err := st.BatchItemOf(ctx, ids["v8-batch-submitted"])
		if err != nil || sub.State != store.BatchSubmitted || sub.BatchID != "msgbatch_01v8fixture" {
			t.Errorf("BatchItemOf(v8-batch-submitted) = %+v, %v; want submitted in msgbatch_01v8fixture", sub, err)
		}
		if batches, err := st.SubmittedBatches(ctx); err != nil || len(batches) != 1 || batches[0] != "msgbatch_01v8fixture" {
			t.Errorf("SubmittedBatches = %v, %v; want [msgbatch_01v8fixture]", batches, err)
		}
		alerts, err := st.Alerts(ctx, false, 0)
		if err != nil || len(alerts) != 1 || alerts[0].Scope != "global" || alerts[0].Threshold != 100 || !alerts[0].Sent {
			t.Errorf("Alerts = %+v, %v; want the sent alert at 100%% of the global daily budget", alerts, err)
		}

		// The outbox: only the delivery the dispatcher had not reached is
		// undispatched; the deferred one waits for its budget's next day.
		var claimed []store.Claim
		var resumed []int64
		err = st.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			if claimed, err = st.ClaimUndispatchedTx(ctx, tx, 100); err != nil {
				return err
			}
			resumed, err = st.ResumeDueTx(ctx, tx, 100)
			return err
		})
		if err != nil || len(claimed) != 1 || claimed[0].ID != ids["v8-queued"] || len(resumed) != 0 {
			t.Errorf("claimed %v, resumed %v, %v; want [%d] (v8-queued) and none", claimed, resumed, err, ids["v8-queued"])
		}
	})
}

// During a rolling upgrade both releases run on one database: a hookwise
// that knows schema version 8 starts on, and works with, the database that
// one knowing 9 migrated (009 is readable by 8), and each reads what the
// other writes. Both are played by this store with its migrations cut at
// 8 and 9, on what version 8 left behind.
func TestOlderHookwiseRunsBesideNewer(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, engine, url string) {
		ctx := context.Background()
		old := openV8(t, url)
		if err := store.KnowOnly(old, 8); err != nil {
			t.Fatal(err)
		}
		migrate(t, old) // the old instance as it ran before the upgrade
		current, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { current.Close() })
		if err := store.KnowOnly(current, 9); err != nil {
			t.Fatal(err)
		}
		migrate(t, current)
		// The old instance restarts after the new one migrated.
		migrate(t, old)
		if err := old.Ready(ctx); err != nil {
			t.Errorf("Ready of the hookwise that knows 8 = %v, want nil", err)
		}
		state, err := old.Schema(ctx)
		if err != nil || state != (store.SchemaState{Version: 9, Known: 8, OldestReader: 8}) {
			t.Errorf("Schema seen by the hookwise that knows 8 = %+v, %v; want version 9, known 8, readable by 8", state, err)
		}

		delivery := func(guid string) store.Delivery {
			return store.Delivery{HookID: "42", GUID: guid, Event: "issues", Action: "opened", Repo: "acme/app",
				Payload: []byte(`{"action":"opened","issue":{"number":42}}`), ReceivedAt: time.Now()}
		}
		for _, w := range []struct {
			name         string
			write, reads *store.Store
		}{{"old writes, new reads", old, current}, {"new writes, old reads", current, old}} {
			guid := "both-" + strings.ReplaceAll(w.name, " ", "-")
			if ok, err := w.write.PersistDeliveries(ctx, []store.Delivery{delivery(guid)}); err != nil || !ok[0] {
				t.Fatalf("%s: PersistDeliveries = %v, %v", w.name, ok, err)
			}
			d, err := w.reads.FindDelivery(ctx, guid)
			if err != nil || string(d.Payload) != `{"action":"opened","issue":{"number":42}}` || d.Status != store.StatusQueued {
				t.Errorf("%s: FindDelivery = %+v, %v", w.name, d, err)
			}
			if err := w.write.SaveAnalysis(ctx, store.Analysis{DeliveryID: d.ID, Repo: "acme/app", Thread: 42, Kind: "issue-analysis",
				Model: "m", Result: `{"summary":"s"}`}); err != nil {
				t.Fatal(err)
			}
			if a, err := w.reads.Analysis(ctx, d.ID); err != nil || a.Result != `{"summary":"s"}` {
				t.Errorf("%s: Analysis = %+v, %v", w.name, a, err)
			}
			if err := w.reads.SetDeliveryStatus(ctx, d.ID, store.StatusDone, "posted"); err != nil {
				t.Fatal(err)
			}
		}
		// The old instance picks up the fixture's undispatched delivery and
		// the new one's thread notes: one outbox for the fleet.
		var claimed []store.Claim
		if err := old.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			claimed, err = old.ClaimUndispatchedTx(ctx, tx, 100)
			return err
		}); err != nil || len(claimed) != 3 {
			t.Errorf("the old instance claimed %v, %v; want the fixture's undispatched delivery and the two new ones", claimed, err)
		}
		if _, err := current.NoteThread(ctx, "acme/app#42", 1, time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
		if th, err := old.Thread(ctx, "acme/app#42"); err != nil || th.LatestDelivery != 1 {
			t.Errorf("the old instance reads Thread = %+v, %v; want the new one's note", th, err)
		}
		if ok, _, err := current.AdmitAuthor(ctx, "alice", 1, time.Now().Add(-24*time.Hour), 10); err != nil || !ok {
			t.Errorf("AdmitAuthor on the new instance = %v, %v; want admitted", ok, err)
		}
	})
}

// A migration with a floor lets the hookwises that know it run; one
// without a floor ends the rolling upgrade: every hookwise that does not
// know it refuses to start and reports not ready, naming the versions and
// the one it needs. Played on top of the built-in migrations (newest n):
// n+1 readable by n, n+2 readable by n+1, n+3 without a floor.
func TestUnreadableMigrationRefusesOlder(t *testing.T) {
	t.Parallel()
	n := newestBuiltin(t)
	extra := []string{
		fmt.Sprintf("-- readable by: %d\nCREATE TABLE hw_test_notes (id INTEGER PRIMARY KEY, note TEXT NOT NULL);\n", n),
		fmt.Sprintf("-- readable by: %d\nCREATE INDEX hw_test_notes_note ON hw_test_notes (note);\n", n+1),
		"-- Payloads in a format no older hookwise reads.\nALTER TABLE hw_deliveries ADD COLUMN payload_format TEXT NOT NULL DEFAULT '';\n",
	}
	forEachURL(t, func(t *testing.T, engine, url string) {
		ctx := context.Background()
		current := openURL(t, url) // knows n
		next := openURL(t, url)    // knows n+1
		store.WithMigrations(next, withExtra(t, current, extra[:1]))
		newer := openURL(t, url) // knows n+3 when it migrates
		stores := map[int]*store.Store{n: current, n + 1: next}
		steps := []struct {
			applied int
			refused map[int]string // by the version a store knows: its error
			oldest  int
		}{
			{n + 1, nil, n},
			{n + 2, map[int]string{n: fmt.Sprintf("database: schema version %d is newer than this hookwise knows (%d), and migration %d is not readable by it: "+
				"run a hookwise that knows schema version %d or later", n+2, n, n+2, n+1)}, n + 1},
			{n + 3, map[int]string{
				n: fmt.Sprintf("database: schema version %d is newer than this hookwise knows (%d), and migration %d is not readable by it: "+
					"run a hookwise that knows schema version %d or later", n+3, n, n+2, n+3),
				n + 1: fmt.Sprintf("database: schema version %d is newer than this hookwise knows (%d), and migration %d is not readable by it: "+
					"run a hookwise that knows schema version %d or later", n+3, n+1, n+3, n+3),
			}, n + 3},
		}
		for _, step := range steps {
			store.WithMigrations(newer, withExtra(t, current, extra[:step.applied-n]))
			migrate(t, newer)
			for known, st := range stores {
				want := step.refused[known]
				for check, err := range map[string]error{"Migrate": st.Migrate(ctx), "Ready": st.Ready(ctx)} {
					if (want == "" && err != nil) || (want != "" && (err == nil || err.Error() != want)) {
						t.Errorf("knows %d, schema version %d: %s = %v, want %q", known, step.applied, check, err, want)
					}
				}
			}
			state, err := newer.Schema(ctx)
			if want := (store.SchemaState{Version: step.applied, Known: step.applied, OldestReader: step.oldest}); err != nil || state != want {
				t.Errorf("schema version %d: Schema = %+v, %v; want %+v", step.applied, state, err, want)
			}
		}
	})
}

// Migrations applied by a hookwise from before floors were recorded have
// none: an older hookwise takes them as readable only by those that know
// them, until a hookwise that has their files records their floors.
func TestFloorsRecordedForEarlierMigrations(t *testing.T) {
	t.Parallel()
	n := newestBuiltin(t)
	forEachURL(t, func(t *testing.T, engine, url string) {
		ctx := context.Background()
		current := openURL(t, url) // knows n
		newer := openURL(t, url)
		store.WithMigrations(newer, withExtra(t, current, []string{fmt.Sprintf("-- readable by: %d\nCREATE TABLE hw_test_notes (id INTEGER PRIMARY KEY);\n", n)}))
		migrate(t, newer)
		if _, err := newer.DB.ExecContext(ctx, `UPDATE hw_schema_migrations SET readable_by = NULL`); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("database: schema version %d is newer than this hookwise knows (%d), and migration %d is not readable by it: "+
			"run a hookwise that knows schema version %d or later", n+1, n, n+1, n+1)
		if err := current.Migrate(ctx); err == nil || err.Error() != want {
			t.Errorf("knows %d, floors not recorded: Migrate = %v, want %q", n, err, want)
		}
		migrate(t, newer)
		if err := current.Migrate(ctx); err != nil {
			t.Errorf("knows %d, floors recorded: Migrate = %v, want nil", n, err)
		}
	})
}

// newestBuiltin is the newest schema version this hookwise knows.
func newestBuiltin(t *testing.T) int {
	t.Helper()
	floors, err := store.BuiltinFloors(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Max(slices.Collect(maps.Keys(floors)))
}

// withExtra returns st's migrations and, after them, one migration per
// body in extra, numbered on from the newest.
func withExtra(t *testing.T, st *store.Store, extra []string) fstest.MapFS {
	t.Helper()
	set := fstest.MapFS{}
	files := store.Migrations(st)
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(files, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		set[e.Name()] = &fstest.MapFile{Data: data}
	}
	n := newestBuiltin(t)
	for i, body := range extra {
		set[fmt.Sprintf("%03d_test_%d.sql", n+1+i, i)] = &fstest.MapFile{Data: []byte(body)}
	}
	return set
}
