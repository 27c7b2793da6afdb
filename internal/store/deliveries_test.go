package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// PersistDeliveries reports which deliveries were new, on PostgreSQL both
// when the batch goes in as one COPY and when a redelivery in it sends the
// batch down the INSERT … ON CONFLICT way.
func TestPersistDeliveries(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		persist := func(batch ...store.Delivery) []bool {
			t.Helper()
			got, err := st.PersistDeliveries(ctx, batch)
			if err != nil {
				t.Fatalf("PersistDeliveries: %v", err)
			}
			return got
		}
		first := []store.Delivery{delivery("1", "a"), delivery("1", "b"), delivery("2", "a")}
		if got := persist(first...); !slices.Equal(got, []bool{true, true, true}) {
			t.Errorf("PersistDeliveries(a, b, a on hook 2) = %v, want all new", got)
		}
		if got := persist(delivery("1", "c"), delivery("1", "b"), delivery("1", "c"), delivery("1", "d")); !slices.Equal(got, []bool{true, false, false, true}) {
			t.Errorf("PersistDeliveries(c, stored b, c again, d) = %v, want new, old, old, new", got)
		}
		if n := len(storedIDs(t, st)); n != 5 {
			t.Errorf("%d rows stored, want 5 (a, b, a on hook 2, c, d)", n)
		}
		for _, guid := range []string{"a", "c", "d"} {
			d, err := st.FindDelivery(ctx, guid)
			if err != nil {
				t.Fatal(err)
			}
			if want := delivery("1", guid); string(d.Payload) != string(want.Payload) || d.Status != store.StatusQueued {
				t.Errorf("FindDelivery(%s) = %+v, want the payload %s, queued", guid, d, want.Payload)
			}
		}
	})
}

// Payloads are stored compressed and read back as sent; rows stored before
// compression (codec "") still read.
func TestPayloadCompression(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		d := delivery("1", "big")
		d.Payload = []byte(`{"issue":{"body":"` + strings.Repeat("The loader panics when the config file ends in a comment. ", 80) + `"}}`)
		ids := insert(t, st, d)
		var size int
		var codec string
		if err := st.DB.QueryRowContext(ctx, st.Rebind(`SELECT length(payload), payload_codec FROM hw_deliveries WHERE id = ?`), ids[0]).Scan(&size, &codec); err != nil {
			t.Fatal(err)
		}
		if codec != "s2" || size > len(d.Payload)/2 {
			t.Errorf("a %d-byte payload is stored as %d bytes with codec %q, want under half with s2", len(d.Payload), size, codec)
		}
		got, err := st.Delivery(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Payload) != string(d.Payload) {
			t.Errorf("Delivery(%d).Payload = %.60q…, want the %d bytes stored", ids[0], got.Payload, len(d.Payload))
		}

		old := `{"action":"opened","issue":{"number":7}}`
		if _, err := st.DB.ExecContext(ctx, st.Rebind(`INSERT INTO hw_deliveries (hook_id, guid, event, payload, received_at, updated_at)
			VALUES ('1', 'before-007', 'issues', ?, 0, 0)`), []byte(old)); err != nil {
			t.Fatal(err)
		}
		got, err = st.FindDelivery(ctx, "before-007")
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Payload) != old {
			t.Errorf("a payload stored uncompressed reads %q, want %q", got.Payload, old)
		}
	})
}
