package pace_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/pace"
)

// closeRecorder is a request body that records being closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error {
	c.closed.Store(true)
	return nil
}

// These tests use the real clock: the waits they cut short are long.

func TestCancelWhileWaitingForRate(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t, nil, pace.Options{Upstream: pace.GitHub, MaxConcurrent: 1, WritesPerMinute: 1})
	mustSend(t, tr, "token", http.MethodPost, srv.URL)

	// The next write waits a minute for the window, holding the only slot.
	ctx, cancel := context.WithTimeout(pace.WithKey(context.Background(), "token"), 50*time.Millisecond)
	defer cancel()
	body := &closeRecorder{Reader: strings.NewReader("{}")}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RoundTrip = %v, want context.DeadlineExceeded", err)
	}
	if got := time.Since(start); got > 2*time.Second {
		t.Errorf("RoundTrip returned after %v, want promptly after the deadline", got)
	}
	if !body.closed.Load() {
		t.Errorf("request body of an unsent request not closed")
	}

	// The slot is free again: a read goes through at once.
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := send(ctx, tr, "token", http.MethodGet, srv.URL); err != nil {
		t.Errorf("GET after the cancelled write: %v (slot not released?)", err)
	}
}

func TestCancelWhileWaitingForSlot(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	tr := newTransport(t, nil, pace.Options{Upstream: pace.Anthropic, MaxConcurrent: 1})

	// A response whose body is open holds the slot.
	req, _ := http.NewRequestWithContext(pace.WithKey(context.Background(), "sonnet"), http.MethodGet, srv.URL, nil)
	held, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := send(ctx, tr, "sonnet", http.MethodGet, srv.URL); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET while the slot is held = %v, want context.DeadlineExceeded", err)
	}
	if got := time.Since(start); got > 2*time.Second {
		t.Errorf("GET returned after %v, want promptly after the deadline", got)
	}
	// Another key has its own slots.
	if _, err := send(context.Background(), tr, "haiku", http.MethodGet, srv.URL); err != nil {
		t.Errorf("GET with another key: %v", err)
	}

	// Reading the body to its end gives the slot back.
	if _, err := io.ReadAll(held.Body); err != nil {
		t.Fatal(err)
	}
	held.Body.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := send(ctx, tr, "sonnet", http.MethodGet, srv.URL); err != nil {
		t.Errorf("GET after the body was closed: %v", err)
	}
}
