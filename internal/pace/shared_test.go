package pace_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	slots []time.Time // what WriteSlots reports
}

func (w *sharedWindow) TakeWriteSlot(_ context.Context, key string, now time.Time, _ pace.WriteLimits, within time.Duration) (time.Time, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, key)
	// The other instance wrote just before: every slot is delay after the
	// previous one.
	at := now.Add(w.delay)
	if next := w.last.Add(w.delay); next.After(at) {
		at = next
	}
	if within > 0 && at.After(now.Add(within)) {
		return at, false, nil
	}
	w.last = at
	return at, true, nil
}

func (w *sharedWindow) WriteSlots(context.Context, string, time.Time) ([]time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.slots, nil
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

// A write whose shared slot is further off than SnoozeAfter is not sent
// and reserves nothing: it says how long to wait instead.
func TestSharedWriteWindowSnoozes(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	shared := &sharedWindow{delay: 40 * time.Second}
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 80, Shared: shared, SnoozeAfter: 30 * time.Second})
	start := clock.Now()
	_, err := send(context.Background(), rt, "token", http.MethodPost, srv.URL+"/repos/acme/app/issues/1/comments")
	var wait *pace.WaitError
	if !errors.As(err, &wait) || wait.RetryAfterDuration() != 40*time.Second {
		t.Fatalf("write 40s off = %v, want a WaitError of 40s", err)
	}
	if waited := clock.Since(start); waited != 0 || !shared.last.IsZero() {
		t.Errorf("waited %v and reserved %v, want neither", waited, shared.last)
	}
}

// A write the local window would hold longer than SnoozeAfter is not
// sent: the caller hears how long until its slot; reads still go.
func TestWriteWindowSnoozes(t *testing.T) {
	t.Parallel()
	clock := newClock()
	var posts atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	})
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 2, SnoozeAfter: 10 * time.Second})
	start := clock.Now()
	for i := range 2 {
		mustSend(t, rt, "token", http.MethodPost, fmt.Sprintf("%s/repos/acme/app/issues/%d/comments", srv.URL, i))
	}
	_, err := send(context.Background(), rt, "token", http.MethodPost, srv.URL+"/repos/acme/app/issues/3/comments")
	var wait *pace.WaitError
	if !errors.As(err, &wait) || wait.RetryAfterDuration() < 59*time.Second || wait.RetryAfterDuration() > time.Minute {
		t.Fatalf("third write in a minute of 2 = %v, want a WaitError of about a minute", err)
	}
	if !strings.Contains(err.Error(), "write window") {
		t.Errorf("error %q does not say it waits for the write window", err)
	}
	mustSend(t, rt, "token", http.MethodGet, srv.URL+"/repos/acme/app")
	if waited := clock.Since(start); waited != 0 || posts.Load() != 2 {
		t.Errorf("waited %v with %d writes sent, want no wait and 2", waited, posts.Load())
	}
}
