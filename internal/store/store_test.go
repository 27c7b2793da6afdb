package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
)

// forEachURL runs test in a parallel subtest per engine storetest.URLs
// offers ("sqlite", and "postgres" when HOOKWISE_TEST_DATABASE_URL is set),
// each with the URL of a fresh, empty database that is removed afterwards.
func forEachURL(t *testing.T, test func(t *testing.T, engine, url string)) {
	t.Helper()
	urls := storetest.URLs(t)
	engines := make([]string, 0, len(urls))
	for engine := range urls {
		engines = append(engines, engine)
	}
	slices.Sort(engines)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, engine, urls[engine])
		})
	}
}

// forEachStore is forEachURL with the database opened and migrated.
func forEachStore(t *testing.T, test func(t *testing.T, st *store.Store)) {
	t.Helper()
	forEachURL(t, func(t *testing.T, _, url string) { test(t, openURL(t, url)) })
}

// openURL opens the database at url, migrates it and closes it when the
// test ends. Opening one URL twice gives two handles on one database, as two
// instances of hookwise have.
func openURL(t *testing.T, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.MigrationLock(ctx, func() error { return st.Migrate(ctx) }); err != nil {
		t.Fatal(err)
	}
	return st
}

func insert(t *testing.T, st *store.Store, ds ...store.Delivery) []int64 {
	t.Helper()
	var ids []int64
	err := st.Tx(context.Background(), func(tx *sql.Tx) error {
		var err error
		ids, err = st.InsertDeliveries(context.Background(), tx, ds)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestInsertDeliveriesDeduplicates(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		d := func(hook, guid string) store.Delivery {
			return store.Delivery{HookID: hook, GUID: guid, Event: "issues", Payload: []byte(`{}`), ReceivedAt: time.Now()}
		}
		ids := insert(t, st, d("1", "a"), d("1", "a"), d("2", "a"), d("1", "b"))
		if ids[0] == 0 || ids[1] != 0 || ids[2] == 0 || ids[3] == 0 {
			t.Errorf("InsertDeliveries(a, copy of a, a on hook 2, b) ids = %v, want new, 0, new, new", ids)
		}
		again := insert(t, st, d("1", "a"), d("1", "c"))
		if again[0] != 0 || again[1] == 0 {
			t.Errorf("InsertDeliveries(redelivery of a, c) ids = %v, want 0, new", again)
		}
		got, err := st.FindDelivery(context.Background(), "b")
		if err != nil || got.ID != ids[3] || got.Status != store.StatusQueued {
			t.Errorf("FindDelivery(b) = %d %q, %v; want %d queued", got.ID, got.Status, err, ids[3])
		}
		if _, err := st.FindDelivery(context.Background(), "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindDelivery(nope) error = %v, want ErrNotFound", err)
		}
	})
}

func TestLockThread(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		steps := []struct {
			owner string
			ttl   time.Duration
			want  bool
		}{
			{"a", time.Minute, true},  // free
			{"b", time.Minute, false}, // held by a
			{"a", time.Minute, true},  // a extends its own lease
			{"a", -time.Second, true}, // a lets it lapse
			{"b", time.Minute, true},  // lapsed lease is taken over
			{"a", time.Minute, false}, // now held by b
		}
		for i, s := range steps {
			got, err := st.LockThread(ctx, "acme/app#1", s.owner, s.ttl)
			if err != nil || got != s.want {
				t.Fatalf("step %d: LockThread(%s) = %v, %v; want %v", i, s.owner, got, err, s.want)
			}
		}
		if err := st.UnlockThread(ctx, "acme/app#1", "b"); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.LockThread(ctx, "acme/app#1", "a", time.Minute); !got {
			t.Errorf("LockThread after unlock = false, want true")
		}
	})
}

func TestReadyNeedsMigrations(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, _, url string) {
		ctx := context.Background()
		st, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Ready(ctx); err == nil {
			t.Error("Ready before Migrate = nil, want an error")
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.Ready(ctx); err != nil {
			t.Errorf("Ready after Migrate = %v, want nil", err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Errorf("second Migrate = %v, want nil (idempotent)", err)
		}
	})
}

// A database a newer hookwise migrated is refused, at start and by the
// readiness check: an older hookwise would misread what the newer one
// writes (after a rollback, say).
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if _, err := st.DB.ExecContext(ctx, `INSERT INTO hw_schema_migrations (version, applied_at) VALUES (999, 0)`); err != nil {
			t.Fatal(err)
		}
		for name, check := range map[string]func(context.Context) error{"Migrate": st.Migrate, "Ready": st.Ready} {
			if err := check(ctx); err == nil || !strings.Contains(err.Error(), "schema version 999 is newer than this hookwise knows") {
				t.Errorf("%s on a schema migrated by a newer hookwise = %v, want it refused", name, err)
			}
		}
	})
}

// TestOpenCreatesDirectory is SQLite-only: only a SQLite URL is a file path.
func TestOpenCreatesDirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "hookwise.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer st.Close()
	if st.Dialect != store.SQLite {
		t.Errorf("Open(%s).Dialect = %q, want %q", path, st.Dialect, store.SQLite)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Open(%s) left no file: %v", path, err)
	}
	if err := st.Sync(ctx); err != nil {
		t.Errorf("Sync = %v, want nil", err)
	}
}

// TestLockServing: the serving flock is SQLite's; on PostgreSQL every
// instance may serve, and LockServing never refuses.
func TestLockServing(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, engine, url string) {
		a, b := openURL(t, url), openURL(t, url)
		unlockA, err := a.LockServing()
		if err != nil {
			t.Fatalf("first LockServing = %v, want nil", err)
		}
		unlockB, err := b.LockServing()
		if engine == "postgres" {
			if err != nil {
				t.Errorf("second LockServing on PostgreSQL = %v, want nil", err)
			} else {
				unlockB()
			}
			unlockA()
			return
		}
		if err == nil {
			unlockB()
			t.Errorf("second LockServing on one SQLite file = nil, want an error")
		} else if !strings.Contains(err.Error(), "already serving") {
			t.Errorf("second LockServing on one SQLite file = %v, want an error saying another hookwise is serving", err)
		}
		unlockA()
		unlockB, err = b.LockServing()
		if err != nil {
			t.Fatalf("LockServing after unlock = %v, want nil", err)
		}
		unlockB()
	})
}

// TestMigrateTwoInstances is PostgreSQL-only: a SQLite file has one serving
// process, while instances of a fleet start together and must not apply
// one migration twice.
func TestMigrateTwoInstances(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			st, err := store.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			errs[i] = st.MigrationLock(ctx, func() error { return st.Migrate(ctx) })
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: MigrationLock(Migrate) = %v, want nil", i, err)
		}
	}
	st := openURL(t, url)
	if err := st.Ready(ctx); err != nil {
		t.Errorf("Ready after concurrent migrations = %v, want nil", err)
	}
}
