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
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
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
