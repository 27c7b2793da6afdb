package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwise/hookwise/internal/web"
)

// countingStore counts readiness checks and holds each until release is
// closed.
type countingStore struct {
	web.Store
	checks  atomic.Int64
	release chan struct{}
}

func (s *countingStore) Ready(ctx context.Context) error {
	s.checks.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Ready(ctx)
}

// Probes arriving while a readiness check runs, or within a second of it,
// share its answer: a crowd of probes on a public port costs the database
// one write a second.
func TestReadyzShared(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	st := &countingStore{Store: f.st, release: make(chan struct{})}
	h := web.NewHandler(web.Options{Store: st, Queue: f.q})
	probe := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code
	}
	var wg sync.WaitGroup
	codes := make(chan int, 50)
	for range 50 {
		wg.Go(func() { codes <- probe() })
	}
	time.Sleep(100 * time.Millisecond) // the probes wait on the first check
	close(st.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Errorf("GET /readyz = %d, want 200", code)
		}
	}
	for range 20 {
		probe()
	}
	if got := st.checks.Load(); got != 1 {
		t.Errorf("readiness checks for 70 probes within a second = %d, want 1", got)
	}
	time.Sleep(1100 * time.Millisecond)
	if code := probe(); code != 200 {
		t.Errorf("GET /readyz a second later = %d, want 200", code)
	}
	if got := st.checks.Load(); got != 2 {
		t.Errorf("readiness checks a second later = %d, want 2", got)
	}
}

// A probe whose client goes away does not cancel the check the others
// wait for.
func TestReadyzClientGone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	st := &countingStore{Store: f.st, release: make(chan struct{})}
	h := web.NewHandler(web.Options{Store: st, Queue: f.q})
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil).WithContext(ctx))
		gone <- w.Code
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if code := <-gone; code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz of a client that went away = %d, want 503", code)
	}
	close(st.release)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 200 || st.checks.Load() != 1 {
		t.Errorf("GET /readyz after = %d with %d checks, want 200 from the first check", w.Code, st.checks.Load())
	}
}

// Scrapes within two seconds of each other share one read of the job
// counts from the database.
func TestMetricsShared(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{counts: map[string]int64{"available": 3}}
	reg := prometheus.NewRegistry()
	reg.MustRegister(web.JobsCollector(q))
	h := web.NewHandler(web.Options{Gatherer: reg})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
			if w.Code == 200 && !strings.Contains(w.Body.String(), `hookwise_jobs{state="available"} 3`) {
				t.Errorf("GET /metrics = %s, want the job counts", w.Body)
			}
			// Beyond four scrapes at once the answer is 503.
			if w.Code != 200 && w.Code != http.StatusServiceUnavailable {
				t.Errorf("GET /metrics = %d, want 200 or 503", w.Code)
			}
		})
	}
	wg.Wait()
	if got := q.reads.Load(); got != 1 {
		t.Errorf("job count reads for 20 scrapes = %d, want 1", got)
	}
}
