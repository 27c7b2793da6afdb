package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "sub", "hookwise.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
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
	st := openStore(t)
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
}

func TestLockThread(t *testing.T) {
	t.Parallel()
	st := openStore(t)
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
}

func TestReadyNeedsMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
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
}
