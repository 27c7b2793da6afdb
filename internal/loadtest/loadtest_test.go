package loadtest_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/loadtest"
	"github.com/hookwise/hookwise/internal/webhook"
)

const secret = "load-secret"

// receiver is a webhook endpoint that checks what a GitHub delivery must
// carry and counts what arrived.
type receiver struct {
	mu       sync.Mutex
	guids    map[string]bool
	events   map[string]int // "event.action" → count
	repos    map[string]int
	sizes    []int
	badSig   int
	answer   int // status to answer; 0: 202
	problems []string
}

func newReceiver() *receiver {
	return &receiver{guids: map[string]bool{}, events: map[string]int{}, repos: map[string]int{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !webhook.Verify([][]byte{[]byte(secret)}, body, r.Header.Get("X-Hub-Signature-256")) {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p struct {
		Action     string `json:"action"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Issue struct {
			Number int `json:"number"`
		} `json:"issue"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		rc.problems = append(rc.problems, "payload is not JSON: "+err.Error())
	}
	guid := r.Header.Get("X-GitHub-Delivery")
	if rc.guids[guid] {
		rc.problems = append(rc.problems, "GUID sent twice: "+guid)
	}
	rc.guids[guid] = true
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		rc.problems = append(rc.problems, "Content-Type "+ct)
	}
	if r.Header.Get("X-GitHub-Hook-ID") == "" || p.Issue.Number == 0 {
		rc.problems = append(rc.problems, "no hook id or issue number")
	}
	rc.events[r.Header.Get("X-GitHub-Event")+"."+p.Action]++
	rc.repos[p.Repository.FullName]++
	rc.sizes = append(rc.sizes, len(body))
	code := rc.answer
	if code == 0 {
		code = http.StatusAccepted
	}
	w.WriteHeader(code)
}

func run(t *testing.T, o loadtest.Options) *loadtest.Result {
	t.Helper()
	if o.Secret == nil {
		o.Secret = []byte(secret)
	}
	res, err := loadtest.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRunSendsSignedDeliveries(t *testing.T) {
	rc := newReceiver()
	srv := httptest.NewServer(rc)
	defer srv.Close()

	res := run(t, loadtest.Options{URL: srv.URL, Requests: 500, Concurrency: 8, OpenedEvery: 50})

	if res.Sent != 500 || res.OK() != 500 || res.Err() != nil {
		t.Errorf("Sent, OK, Err = %d, %d, %v; want 500, 500, nil", res.Sent, res.OK(), res.Err())
	}
	if res.Status[202] != 500 || res.Latency.Count() != 500 {
		t.Errorf("Status = %v, answers timed = %d; want 500 × 202", res.Status, res.Latency.Count())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig != 0 || len(rc.guids) != 500 || len(rc.problems) > 0 {
		t.Errorf("receiver: %d bad signatures, %d distinct GUIDs (want 0, 500); problems %v", rc.badSig, len(rc.guids), rc.problems)
	}
	if rc.events["issues.labeled"] != 490 || rc.events["issues.opened"] != 10 || res.Opened != 10 {
		t.Errorf("events = %v, Opened = %d; want 490 issues.labeled and 10 issues.opened", rc.events, res.Opened)
	}
	for repo := range rc.repos {
		if !strings.HasPrefix(repo, loadtest.Owner+"/run-") {
			t.Errorf("delivery about %q, want a repository of %s", repo, loadtest.Owner)
		}
	}
	for _, n := range rc.sizes {
		if n < loadtest.DefaultSize-50 || n > loadtest.DefaultSize+50 {
			t.Errorf("payload of %d bytes, want about %d", n, loadtest.DefaultSize)
			break
		}
	}
}

func TestRunCountsNon2xx(t *testing.T) {
	rc := newReceiver()
	rc.answer = http.StatusServiceUnavailable
	srv := httptest.NewServer(rc)
	defer srv.Close()

	res := run(t, loadtest.Options{URL: srv.URL, Requests: 40, Concurrency: 4})
	if res.Status[503] != 40 || res.OK() != 0 || res.Failed() != 40 {
		t.Errorf("Status = %v, OK = %d, Failed = %d; want 40 × 503", res.Status, res.OK(), res.Failed())
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "40 of 40") {
		t.Errorf("Err() = %v, want 40 of 40 not 2xx", err)
	}

	// A wrong secret: the receiver answers 401, counted the same way.
	rc.answer = 0
	res = run(t, loadtest.Options{URL: srv.URL, Requests: 10, Secret: []byte("not the secret")})
	if res.Status[401] != 10 || res.Err() == nil {
		t.Errorf("wrong secret: Status = %v, Err = %v; want 10 × 401 and an error", res.Status, res.Err())
	}
}

func TestRunAtRate(t *testing.T) {
	rc := newReceiver()
	srv := httptest.NewServer(rc)
	defer srv.Close()

	start := time.Now()
	res := run(t, loadtest.Options{URL: srv.URL, Rate: 200, Duration: time.Second})
	took := time.Since(start)
	// 200 a second for one second: about 200, and never far beyond the
	// schedule.
	if res.Sent < 150 || res.Sent > 201 || res.OK() != res.Sent {
		t.Errorf("at 200/s for 1s: Sent = %d, OK = %d; want about 200, all 2xx", res.Sent, res.OK())
	}
	if took > 3*time.Second {
		t.Errorf("a 1 s run took %s", took)
	}
}

// Hostile answers: a server that never answers, one that closes the
// connection, one that answers 500. None may hold the run past its
// duration (plus the grace for requests in flight), and each failure is
// counted.
func TestRunSurvivesHostileServers(t *testing.T) {
	servers := map[string]http.Handler{
		"never answers": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Read the body, so that the server notices the client
			// hanging up, then wait for that.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}),
		"closes the connection": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}),
		"answers 500": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}),
	}
	for name, h := range servers {
		for _, mode := range []string{"concurrency", "rate"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				srv := httptest.NewServer(h)
				defer srv.Close()
				o := loadtest.Options{URL: srv.URL, Duration: 500 * time.Millisecond, Grace: 200 * time.Millisecond,
					Timeout: 10 * time.Second, Concurrency: 4}
				if mode == "rate" {
					o.Rate = 100
				}
				start := time.Now()
				res := run(t, o)
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("run of 0.5 s took %s", took)
				}
				if res.Sent == 0 || res.OK() != 0 || res.Failed() != res.Sent || res.Err() == nil {
					t.Errorf("Sent %d, OK %d, Failed %d, Err %v; want every request failed", res.Sent, res.OK(), res.Failed(), res.Err())
				}
			})
		}
	}
}

func TestRunRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res := run(t, loadtest.Options{URL: "http://" + addr + "/webhook", Requests: 5, Concurrency: 1})
	if res.Errors["connection refused"] != 5 || res.Err() == nil {
		t.Errorf("Errors = %v, Err = %v; want 5 refused and an error", res.Errors, res.Err())
	}
}

func TestCheckNamesTheFlag(t *testing.T) {
	for _, tc := range []struct {
		o    loadtest.Options
		want string
	}{
		{loadtest.Options{Secret: []byte("s"), Requests: 1}, "--url"},
		{loadtest.Options{URL: "http://x", Requests: 1}, "--secret"},
		{loadtest.Options{URL: "http://x", Secret: []byte("s")}, "--duration, --requests"},
		{loadtest.Options{URL: "http://x", Secret: []byte("s"), Requests: 1, Rate: -1}, "--rate"},
		{loadtest.Options{URL: "http://x", Secret: []byte("s"), Requests: 1, Size: 26 << 20}, "--size"},
	} {
		err := tc.o.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	h := loadtest.NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(tc.q)
		if got < tc.want || float64(got) > float64(tc.want)*1.011 {
			t.Errorf("Quantile(%v) = %s, want %s within 1%% above", tc.q, got, tc.want)
		}
	}
	var total uint64
	for _, b := range h.Buckets() {
		total += b.Count
	}
	if total != 1000 || h.Max() != time.Second {
		t.Errorf("buckets hold %d, max %s; want 1000, 1s", total, h.Max())
	}
}

// The progress callback is called while a run goes on.
func TestRunReportsProgress(t *testing.T) {
	srv := httptest.NewServer(newReceiver())
	defer srv.Close()
	var calls atomic.Int32
	run(t, loadtest.Options{URL: srv.URL, Rate: 100, Duration: 350 * time.Millisecond,
		ProgressEvery: 100 * time.Millisecond, Progress: func(loadtest.Snapshot) { calls.Add(1) }})
	if calls.Load() < 2 {
		t.Errorf("progress reported %d times in 0.35 s every 0.1 s, want at least 2", calls.Load())
	}
}
