package pace_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/pace"
)

// sharedWindow is a window another instance fills: it hands out slots a
// fixed delay after the last one, as a window with that spacing would.
type sharedWindow struct {
	mu    sync.Mutex
	last  time.Time
	delay time.Duration
	calls []string
}

func (w *sharedWindow) TakeWriteSlot(_ context.Context, key string, now time.Time, perMinute, perHour int, spacing time.Duration) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, key)
	// The other instance wrote just before: every slot is delay after the
	// previous one.
	at := now.Add(w.delay)
	if next := w.last.Add(w.delay); next.After(at) {
		at = next
	}
	w.last = at
	return at, nil
}

// A write waits for the slot the shared window gives it; a read does not
// ask the window at all.
func TestSharedWriteWindow(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	shared := &sharedWindow{delay: 5 * time.Second}
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 80, Shared: shared})

	start := clock.Now()
	mustSend(t, rt, "token", http.MethodGet, srv.URL+"/repos/acme/app")
	if waited := clock.Since(start); waited != 0 || len(shared.calls) != 0 {
		t.Errorf("read waited %v and asked the shared window %d times, want 0 and 0", waited, len(shared.calls))
	}
	mustSend(t, rt, "token", http.MethodPost, srv.URL+"/repos/acme/app/issues/1/comments")
	mustSend(t, rt, "token", http.MethodPost, srv.URL+"/repos/acme/app/issues/2/comments")
	if waited := clock.Since(start); waited != 10*time.Second {
		t.Errorf("two writes waited %v in all, want the two 5s slots the shared window gave", waited)
	}
	if len(shared.calls) != 2 || shared.calls[0] != "token" {
		t.Errorf("shared window asked %q, want twice for key token", shared.calls)
	}
}
