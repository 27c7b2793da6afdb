package store

import (
	"context"
	"testing"
	"time"
)

func TestWrites(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"SELECT id FROM hw_deliveries", false},
		{"  select 1", false},
		{"-- name: JobGetAvailable\nSELECT * FROM river_job", false},
		{"/* TEMPLATE */ SELECT 1", false},
		{"UPDATE hw_deliveries SET dispatched = 1 RETURNING id", true},
		{"INSERT INTO hw_health (id) VALUES (1)", true},
		{"WITH x AS (SELECT 1) UPDATE t SET a = 1", true},
		{"PRAGMA wal_checkpoint(PASSIVE)", true},
		{"-- only a comment, then a write\nDELETE FROM t", true},
		{"/* unterminated", false},
	} {
		if got := writes(tc.query); got != tc.want {
			t.Errorf("writes(%q) = %v, want %v", tc.query, got, tc.want)
		}
	}
}

// An urgent writer that arrives after background writers gets the gate
// before them; the background writers then get it in their order.
func TestGateServesUrgentFirst(t *testing.T) {
	g := &writeGate{}
	ctx := context.Background()
	if err := g.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	wait := func(name string, urgent bool) {
		if err := g.acquire(ctx, urgent); err != nil {
			t.Error(err)
			return
		}
		order <- name
		g.release()
	}
	go wait("background 1", false)
	waitQueued(t, g, 0, 1)
	go wait("background 2", false)
	waitQueued(t, g, 0, 2)
	go wait("urgent", true)
	waitQueued(t, g, 1, 2)
	g.release()
	for _, want := range []string{"urgent", "background 1", "background 2"} {
		if got := <-order; got != want {
			t.Errorf("gate went to %q, want %q", got, want)
		}
	}
}

// A waiter whose context ends leaves the queue, and the gate still goes to
// the next.
func TestGateWaiterGivesUp(t *testing.T) {
	g := &writeGate{}
	if err := g.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.acquire(ctx, true); err == nil {
		t.Fatal("acquire on a held gate with an ending context = nil, want its error")
	}
	got := make(chan struct{})
	go func() {
		if err := g.acquire(context.Background(), false); err == nil {
			close(got)
		}
	}()
	waitQueued(t, g, 0, 1)
	g.release()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter after one that gave up never got the gate")
	}
}

func waitQueued(t *testing.T, g *writeGate, urgent, others int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		g.mu.Lock()
		u, o := len(g.urgent), len(g.others)
		g.mu.Unlock()
		if u == urgent && o == others {
			return
		}
	}
	t.Fatalf("gate queues never reached %d urgent, %d others", urgent, others)
}
