package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/loadtest"

	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
	"github.com/hookwise/hookwise/internal/webhook"
)

const (
	benchSenders     = 32
	benchPayloadSize = 11776 // 11.5 KB
)

// BenchmarkIngest compares durable ingest (verify, validate, group-commit to
// SQLite, fsynced) against a bare handler that only checks the HMAC,
// with benchSenders concurrent senders posting 11.5 KB issues.opened
// deliveries over loopback. See BENCHMARKS.md for how to run it.
func BenchmarkIngest(b *testing.B) {
	payload := issuesOpenedPayload(b, benchPayloadSize)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        2 * benchSenders,
		MaxIdleConnsPerHost: 2 * benchSenders,
	}}
	b.Cleanup(client.CloseIdleConnections)

	b.Run("bare", func(b *testing.B) {
		bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxBody))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if !webhook.Verify([][]byte{testSecret}, body, r.Header.Get("X-Hub-Signature-256")) {
				http.Error(w, "signature does not match", http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		})
		srv := httptest.NewServer(bare)
		defer srv.Close()
		runSenders(b, client, srv.URL+"/webhook", payload)
	})

	durable := func(b *testing.B, url string) {
		tp := &timedPersister{}
		e := newHandlerOn(b, url, func(p webhook.Persister) webhook.Persister {
			tp.next = p
			return tp
		})
		runSenders(b, client, e.srv.URL+"/webhook", payload)
		// Where the time goes: how large the group commits grew and how long
		// each took (both are what the throughput is made of).
		tp.mu.Lock()
		defer tp.mu.Unlock()
		if tp.batches > 0 {
			b.ReportMetric(float64(tp.deliveries)/float64(tp.batches), "batch")
			b.ReportMetric(ms(tp.busy)/float64(tp.batches), "commit-ms")
		}
		if tp.syncs > 0 { // none on PostgreSQL: a commit is durable when it returns
			b.ReportMetric(ms(tp.syncBusy)/float64(tp.syncs), "sync-ms")
			b.ReportMetric(float64(tp.deliveries)/float64(tp.syncs), "per-sync")
		}
	}
	b.Run("durable", func(b *testing.B) { durable(b, filepath.Join(b.TempDir(), "hookwise.db")) })
	// On PostgreSQL (when HOOKWISE_TEST_DATABASE_URL is set) each batch is
	// one COPY, durable when it returns: there is no Sync.
	b.Run("postgres", func(b *testing.B) { durable(b, storetest.PostgresURL(b)) })
}

// timedPersister measures the commits of the Persister it wraps.
type timedPersister struct {
	next webhook.Persister

	mu         sync.Mutex
	batches    int
	deliveries int
	busy       time.Duration
	syncs      int
	syncBusy   time.Duration
}

func (p *timedPersister) Persist(ctx context.Context, batch []store.Delivery) ([]bool, error) {
	start := time.Now()
	inserted, err := p.next.Persist(ctx, batch)
	d := time.Since(start)
	p.mu.Lock()
	p.batches++
	p.deliveries += len(batch)
	p.busy += d
	p.mu.Unlock()
	return inserted, err
}

func (p *timedPersister) Sync(ctx context.Context) error {
	start := time.Now()
	err := p.next.Sync(ctx)
	d := time.Since(start)
	p.mu.Lock()
	p.syncs++
	p.syncBusy += d
	p.mu.Unlock()
	return err
}

// runSenders posts b.N deliveries of payload from benchSenders goroutines,
// each with its own GUID, and reports throughput and latency percentiles.
func runSenders(b *testing.B, client *http.Client, target string, payload []byte) {
	b.Helper()
	sig := webhook.Sign(testSecret, payload)
	var (
		next     atomic.Int64
		failures atomic.Int64
		firstErr atomic.Value
		mu       sync.Mutex
		all      = make([]time.Duration, 0, b.N)
		wg       sync.WaitGroup
	)
	send := func(i int64) error {
		req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", sig)
		req.Header.Set("X-GitHub-Event", "issues")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
		req.Header.Set("X-GitHub-Hook-ID", "424242")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("delivery %d: status %d", i, resp.StatusCode)
		}
		return nil
	}

	b.ResetTimer()
	start := time.Now()
	for range benchSenders {
		wg.Go(func() {
			lat := make([]time.Duration, 0, b.N/benchSenders+1)
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				t0 := time.Now()
				if err := send(i); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d answers were not 2xx; first: %v", n, b.N, firstErr.Load())
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
}

// percentile returns the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// issuesOpenedPayload returns the issues.opened delivery the load test
// sends (see loadtest.IssuesPayload), exactly size bytes.
func issuesOpenedPayload(tb testing.TB, size int) []byte {
	tb.Helper()
	out, err := loadtest.IssuesPayload("opened", "octo-org/hello-world", 1_347_000, size)
	if err != nil {
		tb.Fatal(err)
	}
	if len(out) != size {
		tb.Fatalf("issues.opened payload is %d bytes, want %d", len(out), size)
	}
	return out
}
