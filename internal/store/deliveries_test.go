package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// receivedAt is when test deliveries arrived, in whole milliseconds as
// the store keeps it.
var receivedAt = time.UnixMilli(1_764_400_000_123).UTC()

func delivery(hook, guid string) store.Delivery {
	return store.Delivery{HookID: hook, HookTarget: "repository", GUID: guid, Event: "issues", Action: "opened",
		Repo: "acme/app", InstallationID: 42, Sender: "octocat", Payload: []byte(`{"guid":"` + guid + `"}`), ReceivedAt: receivedAt}
}

// storedIDs maps each stored delivery's "hook/guid" to its id.
func storedIDs(t *testing.T, st *store.Store) map[string]int64 {
	t.Helper()
	rows, err := st.DB.QueryContext(context.Background(), `SELECT id, hook_id, guid FROM hw_deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id int64
		var hook, guid string
		if err := rows.Scan(&id, &hook, &guid); err != nil {
			t.Fatal(err)
		}
		out[hook+"/"+guid] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkInserted checks the ids InsertDeliveries returned for batch: the
// stored row's id for the first new copy of each (hook, guid), 0 for the
// rest, of which old holds the keys stored before.
func checkInserted(t *testing.T, st *store.Store, batch []store.Delivery, ids []int64, old map[string]bool) {
	t.Helper()
	if len(ids) != len(batch) {
		t.Fatalf("InsertDeliveries(%d deliveries) = %d ids, want %d", len(batch), len(ids), len(batch))
	}
	stored := storedIDs(t, st)
	seen := map[string]bool{}
	for i, d := range batch {
		key := d.HookID + "/" + d.GUID
		want := int64(0)
		if !old[key] && !seen[key] {
			want = stored[key]
			if want == 0 {
				t.Errorf("delivery %d (%s) was not stored", i, key)
			}
		}
		seen[key] = true
		if ids[i] != want {
			t.Errorf("InsertDeliveries(...)[%d] (%s) = %d, want %d", i, key, ids[i], want)
		}
	}
}

func TestInsertDeliveriesBatch(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		insert(t, st, delivery("1", "old"))
		batch := []store.Delivery{delivery("1", "a"), delivery("1", "a"), delivery("1", "old"), delivery("2", "old"), delivery("1", "b")}
		ids := insert(t, st, batch...)
		checkInserted(t, st, batch, ids, map[string]bool{"1/old": true})
		if ids[0] == 0 || ids[1] != 0 || ids[2] != 0 || ids[3] == 0 || ids[4] == 0 {
			t.Errorf("InsertDeliveries(a, a again, stored old, old on hook 2, b) = %v, want new, 0, 0, new, new", ids)
		}
		got, err := st.Delivery(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		want := delivery("1", "a")
		if got.HookID != want.HookID || got.HookTarget != want.HookTarget || got.GUID != want.GUID || got.Event != want.Event ||
			got.Action != want.Action || got.Repo != want.Repo || got.InstallationID != want.InstallationID ||
			got.Sender != want.Sender || string(got.Payload) != string(want.Payload) || got.Status != store.StatusQueued ||
			!got.ReceivedAt.Equal(want.ReceivedAt) {
			t.Errorf("Delivery(%d) = %+v, want the fields of %+v, queued", ids[0], got, want)
		}
		if ids := insert(t, st); len(ids) != 0 {
			t.Errorf("InsertDeliveries(none) = %v, want none", ids)
		}
	})
}

// TestInsertDeliveriesLargeBatch matters most on PostgreSQL, where a batch
// goes in as few statements as possible: 6000 deliveries are more than a
// chunk of 1000 and more than one multi-row INSERT of 12 parameters a row
// can bind (65,535), and copies sit on both sides of the chunk boundaries.
func TestInsertDeliveriesLargeBatch(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		insert(t, st, delivery("1", "g0500"), delivery("1", "g5400"))
		var batch []store.Delivery
		for i := range 6000 {
			batch = append(batch, delivery("1", fmt.Sprintf("g%04d", i)))
		}
		// Copies of the first, of one in the middle and of the last, far
		// from them and right after a chunk's end.
		batch = append(batch, delivery("1", "g0000"), delivery("1", "g3000"), delivery("1", "g5999"), delivery("2", "g0000"))
		batch = append(batch[:1000], append([]store.Delivery{delivery("1", "g0999"), delivery("1", "g0001")}, batch[1000:]...)...)
		ids := insert(t, st, batch...)
		checkInserted(t, st, batch, ids, map[string]bool{"1/g0500": true, "1/g5400": true})
		if n := len(storedIDs(t, st)); n != 6000+1 {
			t.Errorf("after a batch of 6000 new deliveries and copies, %d rows stored, want %d", n, 6000+1)
		}
	})
}
