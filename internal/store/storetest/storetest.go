// Package storetest gives tests databases to run against: a temporary
// SQLite file always, and a fresh schema on a PostgreSQL server when
// HOOKWISE_TEST_DATABASE_URL names one.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// EnvURL names the environment variable holding the PostgreSQL server's
// URL for tests.
const EnvURL = "HOOKWISE_TEST_DATABASE_URL"

// URLs returns a database URL per engine for one test: "sqlite" always,
// "postgres" when EnvURL is set. Each is empty and is removed when the test
// ends.
func URLs(t testing.TB) map[string]string {
	t.Helper()
	urls := map[string]string{"sqlite": filepath.Join(t.TempDir(), "hookwise.db")}
	if os.Getenv(EnvURL) != "" {
		urls["postgres"] = PostgresURL(t)
	}
	return urls
}

// PostgresURL returns the URL of a new, empty schema on the test server,
// dropped when the test ends; it skips the test when EnvURL is not set.
// Every connection made with the URL works in that schema (search_path),
// River's tables included, so tests never see each other's rows.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("%s is not set: no PostgreSQL to test against", EnvURL)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvURL, err)
	}
	defer db.Close()
	schema := "hw_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create test schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop test schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%ssearch_path=%s", base, sep, schema)
}

// LoadFixture fills the empty database at url with a database an older
// hookwise left behind: package store's testdata/NAME.sqlite.sql or
// NAME.postgres.sql (see testdata/v8fixture). Every time stored in it,
// ours and River's jobs', moves by the same amount, so that the moment
// the dump stands for (its first line, "-- fixture now: <Unix ms>") is
// now: deadlines, leases and retries are as far off as they were then.
// Times copied from payloads (a thread's updated_at) stay as they are.
func LoadFixture(t testing.TB, url, name string) {
	t.Helper()
	engine, driver, dsn := "sqlite", "sqlite", url
	if store.IsPostgres(url) {
		engine, driver = "postgres", "pgx"
	}
	_, here, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(here), "..", "testdata", name+"."+engine+".sql")
	dump, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	first, _, _ := strings.Cut(string(dump), "\n")
	then, err := strconv.ParseInt(strings.TrimPrefix(first, "-- fixture now: "), 10, 64)
	if err != nil {
		t.Fatalf("fixture %s: first line %q, want \"-- fixture now: <Unix ms>\"", path, first)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, string(dump)); err != nil {
		t.Fatalf("load fixture %s: %v", path, err)
	}
	shift := time.Now().UnixMilli() - then
	for _, q := range shiftTimes(engine) {
		if _, err := db.ExecContext(ctx, q, shift); err != nil {
			t.Fatalf("fixture %s: move its times: %s: %v", path, q, err)
		}
	}
}

// shiftTimes are the statements that move the stored times of a database
// at schema version 8 by $1 milliseconds: our Unix milliseconds (0 is no
// time), and River's job timestamps, which schedule, rescue and age jobs.
func shiftTimes(engine string) []string {
	ours := map[string][]string{
		"hw_schema_migrations": {"applied_at"},
		"hw_deliveries":        {"received_at", "updated_at", "resume_at"},
		"hw_analyses":          {"created_at"},
		"hw_writes":            {"created_at", "updated_at"},
		"hw_thread_locks":      {"expires_at"},
		"hw_health":            {"checked_at"},
		"hw_threads":           {"latest_at", "analysed_at"},
		"hw_usage":             {"created_at", "settled_at", "expires_at"},
		"hw_alerts":            {"created_at", "sent_at"},
		"hw_batch_items":       {"created_at", "updated_at"},
		"hw_write_slots":       {"at"},
	}
	param := "?"
	if engine == "postgres" {
		param = "$1"
	}
	var out []string
	for table, columns := range ours {
		for _, c := range columns {
			out = append(out, fmt.Sprintf("UPDATE %s SET %s = %s + %s WHERE %s <> 0", table, c, c, param, c))
		}
	}
	for _, c := range []string{"attempted_at", "created_at", "finalized_at", "scheduled_at"} {
		if engine == "postgres" {
			out = append(out, fmt.Sprintf("UPDATE river_job SET %s = %s + $1 * interval '1 millisecond'", c, c))
		} else {
			// River's SQLite timestamps are UTC text, to the millisecond.
			out = append(out, fmt.Sprintf("UPDATE river_job SET %s = strftime('%%Y-%%m-%%d %%H:%%M:%%f', %s, (? / 1000.0) || ' seconds')", c, c))
		}
	}
	return out
}
