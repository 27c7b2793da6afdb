package queue_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
)

type permanent struct{ error }

func (permanent) Temporary() bool { return false }

type rateLimited struct{ error }

func (rateLimited) Temporary() bool                   { return true }
func (rateLimited) RetryAfterDuration() time.Duration { return time.Hour }

// processor answers each delivery with the error planned for it.
type processor struct {
	mu     sync.Mutex
	plan   map[int64]error
	calls  map[int64]int
	gaveUp map[int64]int
}

func (p *processor) Process(_ context.Context, id int64, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[id]++
	return p.plan[id]
}

func (p *processor) GaveUp(_ context.Context, id int64, _ error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gaveUp[id]++
}

// migratedStore is a new SQLite store with our and River's migrations,
// closed when the test ends.
func migratedStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := queue.Migrate(ctx, st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWorkerMapsErrors checks what River does with each kind of outcome:
// success completes, a permanent error cancels after one attempt, a rate
// limit snoozes without using an attempt, anything else is retried until
// the attempts run out. The processor hears of each final failure once.
func TestWorkerMapsErrors(t *testing.T) {
	ctx := context.Background()
	st := migratedStore(t)
	proc := &processor{calls: map[int64]int{}, gaveUp: map[int64]int{}}
	q, err := queue.New(st, queue.Options{Workers: 4, MaxAttempts: 5, MaxBackoff: 50 * time.Millisecond,
		JobTimeout: 10 * time.Second, RescueAfter: time.Minute, Processor: proc})
	if err != nil {
		t.Fatal(err)
	}
	var batch []store.Delivery
	for _, guid := range []string{"ok", "perm", "limited", "flaky"} {
		batch = append(batch, store.Delivery{GUID: guid, Event: "issues", Payload: []byte(`{}`), ReceivedAt: time.Now()})
	}
	inserted, err := q.Persist(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range inserted {
		if !ok {
			t.Fatalf("Persist: delivery %d not inserted", i)
		}
	}
	ids := map[string]int64{}
	for _, guid := range []string{"ok", "perm", "limited", "flaky"} {
		d, err := st.FindDelivery(ctx, guid)
		if err != nil {
			t.Fatal(err)
		}
		ids[guid] = d.ID
	}
	proc.plan = map[int64]error{
		ids["perm"]:    permanent{errors.New("404 not found")},
		ids["limited"]: rateLimited{errors.New("429")},
		ids["flaky"]:   errors.New("502 bad gateway"),
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ok": "completed", "perm": "cancelled", "limited": "scheduled", "flaky": "discarded"}
	deadline := time.Now().Add(20 * time.Second)
	var got map[string]string
	for time.Now().Before(deadline) {
		got = map[string]string{}
		for guid, id := range ids {
			var state string
			err := st.DB.QueryRowContext(ctx, `SELECT state FROM river_job WHERE kind = 'process_delivery'
				AND json_extract(args, '$.delivery_id') = ?`, id).Scan(&state)
			if err == nil {
				got[guid] = state
			}
		}
		if equal(got, want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := q.Stop(stop); err != nil {
		t.Fatal(err)
	}
	if !equal(got, want) {
		t.Errorf("job states = %v, want %v", got, want)
	}
	var attempt int
	if err := st.DB.QueryRow(`SELECT attempt FROM river_job WHERE kind = 'process_delivery' AND json_extract(args, '$.delivery_id') = ?`,
		ids["perm"]).Scan(&attempt); err != nil || attempt != 1 {
		t.Errorf("permanent failure attempts = %d, %v; want 1", attempt, err)
	}
	proc.mu.Lock()
	defer proc.mu.Unlock()
	wantCalls := map[string]int{"ok": 1, "perm": 1, "limited": 1, "flaky": 5}
	wantGaveUp := map[string]int{"perm": 1, "flaky": 1}
	for guid, id := range ids {
		if got := proc.calls[id]; got != wantCalls[guid] {
			t.Errorf("%s: Process calls = %d, want %d", guid, got, wantCalls[guid])
		}
		if got := proc.gaveUp[id]; got != wantGaveUp[guid] {
			t.Errorf("%s: GaveUp calls = %d, want %d", guid, got, wantGaveUp[guid])
		}
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The dispatcher gives each delivery's job the priority of its event and
// action, which River fetches by; the periodic jobs run on a queue of their
// own, never behind the deliveries.
func TestDispatchSetsPriority(t *testing.T) {
	ctx := context.Background()
	st := migratedStore(t)
	priority := func(event, action string) int {
		if event == "pull_request" && action == "review_requested" {
			return 1
		}
		return 4
	}
	proc := &processor{calls: map[int64]int{}, gaveUp: map[int64]int{}}
	q, err := queue.New(st, queue.Options{Workers: 2, JobTimeout: 10 * time.Second, RescueAfter: time.Minute, Processor: proc, Priority: priority})
	if err != nil {
		t.Fatal(err)
	}
	batch := []store.Delivery{
		{GUID: "triage", Event: "issues", Action: "opened", Payload: []byte(`{}`), ReceivedAt: time.Now()},
		{GUID: "review", Event: "pull_request", Action: "review_requested", Payload: []byte(`{}`), ReceivedAt: time.Now()},
	}
	if _, err := q.Persist(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = q.Stop(stop)
	}()
	want := map[string]int{"triage": 4, "review": 1}
	deadline := time.Now().Add(20 * time.Second)
	for guid, p := range want {
		d, err := st.FindDelivery(ctx, guid)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		for time.Now().Before(deadline) {
			err = st.DB.QueryRowContext(ctx, `SELECT priority FROM river_job WHERE kind = 'process_delivery'
				AND json_extract(args, '$.delivery_id') = ?`, d.ID).Scan(&got)
			if err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != p {
			t.Errorf("%s's job has priority %d (%v), want %d", guid, got, err, p)
		}
	}
	var queueName string
	if err := st.DB.QueryRowContext(ctx, `SELECT queue FROM river_job WHERE kind = 'dispatch_deliveries' LIMIT 1`).Scan(&queueName); err != nil || queueName != queue.ControlQueue {
		t.Errorf("dispatch job queue = %q, %v; want %q", queueName, err, queue.ControlQueue)
	}
}
