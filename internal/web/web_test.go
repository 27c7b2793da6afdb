package web_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/web"
)

const token = "s3cret-admin-token"

var _ web.Store = (*store.Store)(nil)

// fakeQueue records replays and reports fixed job counts; the dead-letter
// queue is the real one (an insert-only River client on the fixture's store).
type fakeQueue struct {
	*queue.Queue
	mu       sync.Mutex
	replayed []int64
	counts   map[string]int64
	err      error
	reads    atomic.Int64 // calls of JobCounts
}

func (q *fakeQueue) Replay(ctx context.Context, id int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.replayed = append(q.replayed, id)
	return nil
}

func (q *fakeQueue) JobCounts(ctx context.Context) (map[string]int64, error) {
	q.reads.Add(1)
	if q.err != nil {
		return nil, q.err
	}
	return q.counts, nil
}

func (q *fakeQueue) Replayed() []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.replayed)
}

type fixture struct {
	st    *store.Store
	q     *fakeQueue
	h     http.Handler
	ids   []int64 // in insertion order: ids[0] is the oldest
	guids []string
	path  string
}

// newFixture opens a migrated store holding seven deliveries: four on
// octo/a, three on octo/b; the first is done with an analysis, the second
// failed. The handler requires token unless adminToken is "".
func newFixture(t *testing.T, adminToken string) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := queue.Migrate(ctx, st); err != nil {
		t.Fatalf("queue.Migrate: %v", err)
	}
	realQueue, err := queue.New(st, queue.Options{})
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	f := &fixture{st: st, path: path, q: &fakeQueue{Queue: realQueue, counts: map[string]int64{"available": 3, "completed": 10}}}
	var ds []store.Delivery
	for i := range 7 {
		repo, event := "octo/a", "issues"
		if i >= 4 {
			repo, event = "octo/b", "pull_request"
		}
		guid := fmt.Sprintf("guid-%d", i)
		f.guids = append(f.guids, guid)
		ds = append(ds, store.Delivery{
			HookID: "42", GUID: guid, Event: event, Action: "opened", Repo: repo,
			InstallationID: 7, Sender: "octocat", Payload: []byte(`{"secret_payload":true}`),
			ReceivedAt: time.Date(2025, 1, 2, 3, 4, i, 0, time.UTC),
		})
	}
	err = st.Tx(ctx, func(tx *sql.Tx) error {
		f.ids, err = st.InsertDeliveries(ctx, tx, ds)
		return err
	})
	if err != nil {
		t.Fatalf("InsertDeliveries: %v", err)
	}
	if err := st.SetDeliveryStatus(ctx, f.ids[0], store.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.SetDeliveryStatus(ctx, f.ids[1], store.StatusFailed, "github: 502"); err != nil {
		t.Fatal(err)
	}
	err = st.SaveAnalysis(ctx, store.Analysis{
		DeliveryID: f.ids[0], Repo: "octo/a", Thread: 1, Kind: "issue", Model: "claude-test",
		Result: `{"labels":["bug"]}`, InputTokens: 1000, OutputTokens: 200, CostMicros: 4500,
		Latency: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("SaveAnalysis: %v", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(web.JobsCollector(f.q))
	f.h = web.NewHandler(web.Options{
		Store: st, Queue: f.q, Gatherer: reg, AdminToken: adminToken,
		Webhook: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, "webhook "+r.URL.Path)
		}),
	})
	return f
}

// do serves one request from a non-loopback client (httptest's default
// 192.0.2.1), with the admin token when tok is not "".
func (f *fixture) do(t *testing.T, method, target, tok string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	w := f.do(t, "GET", "/api/v1/stats", token)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/stats = %d %s, want 200", w.Code, w.Body)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	var raw map[string]json.RawMessage
	decode(t, w, &raw)
	for _, k := range []string{"deliveries", "by_status", "by_event", "model_calls", "input_tokens",
		"output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd", "comments", "jobs"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stats key %q missing in %s", k, w.Body)
		}
	}
	var got struct {
		Deliveries int64            `json:"deliveries"`
		ByStatus   map[string]int64 `json:"by_status"`
		ByEvent    map[string]int64 `json:"by_event"`
		ModelCalls int64            `json:"model_calls"`
		CostUSD    float64          `json:"cost_usd"`
		Jobs       map[string]int64 `json:"jobs"`
	}
	decode(t, w, &got)
	checks := []struct {
		name      string
		got, want any
	}{
		{"deliveries", got.Deliveries, int64(7)},
		{"by_status.queued", got.ByStatus["queued"], int64(5)},
		{"by_status.done", got.ByStatus["done"], int64(1)},
		{"by_event.pull_request", got.ByEvent["pull_request"], int64(3)},
		{"model_calls", got.ModelCalls, int64(1)},
		{"cost_usd", got.CostUSD, 0.0045},
		{"jobs.available", got.Jobs["available"], int64(3)},
		{"jobs.completed", got.Jobs["completed"], int64(10)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("stats %s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

type listed struct {
	Deliveries []map[string]any `json:"deliveries"`
	NextBefore *int64           `json:"next_before"`
}

func ids(l listed) []int64 {
	var out []int64
	for _, d := range l.Deliveries {
		out = append(out, int64(d["id"].(float64)))
	}
	return out
}

func TestListDeliveries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	newest := slices.Clone(f.ids)
	slices.Reverse(newest)
	tests := []struct {
		query    string
		want     []int64
		wantNext int64 // 0 for null
	}{
		{"", newest, 0},
		{"?limit=3", newest[:3], newest[2]},
		{fmt.Sprintf("?limit=3&before=%d", newest[2]), newest[3:6], newest[5]},
		{fmt.Sprintf("?limit=3&before=%d", newest[5]), newest[6:], 0},
		{"?limit=7", newest, 0},
		{"?limit=500", newest, 0},
		{"?status=failed", []int64{f.ids[1]}, 0},
		{"?repo=octo/b", newest[:3], 0},
		{"?repo=octo/a&status=queued", []int64{f.ids[3], f.ids[2]}, 0},
		{"?repo=nobody/none", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := f.do(t, "GET", "/api/v1/deliveries"+tt.query, token)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s = %d %s, want 200", tt.query, w.Code, w.Body)
			}
			var got listed
			decode(t, w, &got)
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("GET %s ids = %v, want %v", tt.query, ids(got), tt.want)
			}
			if got.Deliveries == nil {
				t.Errorf("GET %s deliveries = null, want a list", tt.query)
			}
			var next int64
			if got.NextBefore != nil {
				next = *got.NextBefore
			}
			if next != tt.wantNext {
				t.Errorf("GET %s next_before = %d, want %d", tt.query, next, tt.wantNext)
			}
		})
	}

	t.Run("fields", func(t *testing.T) {
		w := f.do(t, "GET", "/api/v1/deliveries?status=failed", token)
		var got listed
		decode(t, w, &got)
		if len(got.Deliveries) != 1 {
			t.Fatalf("deliveries = %s, want one", w.Body)
		}
		d := got.Deliveries[0]
		want := map[string]any{
			"id": float64(f.ids[1]), "hook_id": "42", "guid": "guid-1", "event": "issues", "action": "opened",
			"repo": "octo/a", "installation_id": float64(7), "sender": "octocat",
			"received_at": "2025-01-02T03:04:01Z", "status": "failed", "reason": "github: 502",
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("delivery[%q] = %v, want %v", k, d[k], v)
			}
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(d["updated_at"])); err != nil {
			t.Errorf("updated_at = %v, want RFC 3339: %v", d["updated_at"], err)
		}
		if _, ok := d["payload"]; ok || strings.Contains(w.Body.String(), "secret_payload") {
			t.Errorf("delivery = %s, want no payload", w.Body)
		}
	})
}

func TestListDeliveriesBadQuery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	const limitErr = "limit: want a whole number from 1 to 500"
	tests := []struct {
		query, want string
	}{
		{"?limit=abc", limitErr},
		{"?limit=0", limitErr},
		{"?limit=-1", limitErr},
		{"?limit=501", limitErr},
		{"?limit=1.5", limitErr},
		{"?limit=99999999999999999999", limitErr},
		{"?before=x", "before: want a delivery id, a whole number above 0"},
		{"?before=0", "before: want a delivery id, a whole number above 0"},
		{"?status=weird", "status: want one of queued, waiting, deferred, batched, done, skipped, failed, discarded"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := f.do(t, "GET", "/api/v1/deliveries"+tt.query, token)
			if w.Code != http.StatusBadRequest {
				t.Errorf("GET %s = %d, want 400", tt.query, w.Code)
			}
			var got map[string]string
			decode(t, w, &got)
			if got["error"] != tt.want {
				t.Errorf("GET %s error = %q, want %q", tt.query, got["error"], tt.want)
			}
		})
	}
}

func TestShowDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	tests := []struct {
		name         string
		ref          string
		want         int
		wantID       int64
		wantAnalysis bool
	}{
		{"by id, analysed", fmt.Sprint(f.ids[0]), 200, f.ids[0], true},
		{"by guid, analysed", f.guids[0], 200, f.ids[0], true},
		{"by id, not analysed", fmt.Sprint(f.ids[4]), 200, f.ids[4], false},
		{"by guid, not analysed", f.guids[5], 200, f.ids[5], false},
		{"unknown id", "99999", 404, 0, false},
		{"unknown guid", "no-such-guid", 404, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, "GET", "/api/v1/deliveries/"+tt.ref, token)
			if w.Code != tt.want {
				t.Fatalf("GET deliveries/%s = %d %s, want %d", tt.ref, w.Code, w.Body, tt.want)
			}
			if tt.want == 404 {
				if got := strings.TrimSpace(w.Body.String()); got != `{"error":"delivery not found"}` {
					t.Errorf("GET deliveries/%s body = %s, want delivery not found", tt.ref, got)
				}
				return
			}
			var got struct {
				ID       int64 `json:"id"`
				Analysis *struct {
					Model  string `json:"model"`
					Tokens struct {
						Input  int64 `json:"input"`
						Output int64 `json:"output"`
					} `json:"tokens"`
					CostUSD   float64         `json:"cost_usd"`
					LatencyMS int64           `json:"latency_ms"`
					Result    json.RawMessage `json:"result"`
				} `json:"analysis"`
			}
			decode(t, w, &got)
			if got.ID != tt.wantID {
				t.Errorf("GET deliveries/%s id = %d, want %d", tt.ref, got.ID, tt.wantID)
			}
			if (got.Analysis != nil) != tt.wantAnalysis {
				t.Fatalf("GET deliveries/%s analysis = %s, want present: %v", tt.ref, w.Body, tt.wantAnalysis)
			}
			if strings.Contains(w.Body.String(), "secret_payload") {
				t.Errorf("GET deliveries/%s = %s, want no payload", tt.ref, w.Body)
			}
			if got.Analysis == nil {
				return
			}
			a := got.Analysis
			if a.Model != "claude-test" || a.Tokens.Input != 1000 || a.Tokens.Output != 200 ||
				a.CostUSD != 0.0045 || a.LatencyMS != 1500 {
				t.Errorf("GET deliveries/%s analysis = %+v, want claude-test, 1000/200 tokens, $0.0045, 1500 ms", tt.ref, *a)
			}
			if string(a.Result) != `{"labels":["bug"]}` {
				t.Errorf("GET deliveries/%s result = %s, want the stored JSON object", tt.ref, a.Result)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	tests := []struct {
		ref        string
		want       int
		wantQueued int64 // 0 when nothing must be queued
	}{
		{fmt.Sprint(f.ids[2]), 202, f.ids[2]},
		{f.guids[3], 202, f.ids[3]},
		{"99999", 404, 0},
		{"no-such-guid", 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			before := len(f.q.Replayed())
			w := f.do(t, "POST", "/api/v1/deliveries/"+tt.ref+"/replay", token)
			if w.Code != tt.want {
				t.Fatalf("POST replay %s = %d %s, want %d", tt.ref, w.Code, w.Body, tt.want)
			}
			var body map[string]string
			decode(t, w, &body)
			got := f.q.Replayed()[before:]
			if tt.wantQueued == 0 {
				if body["error"] != "delivery not found" || len(got) != 0 {
					t.Errorf("POST replay %s = %s, queued %v; want delivery not found, nothing queued", tt.ref, w.Body, got)
				}
				return
			}
			if body["status"] != "queued" {
				t.Errorf("POST replay %s = %s, want status queued", tt.ref, w.Body)
			}
			if !slices.Equal(got, []int64{tt.wantQueued}) {
				t.Errorf("POST replay %s queued %v, want [%d]", tt.ref, got, tt.wantQueued)
			}
		})
	}
	if w := f.do(t, "GET", "/api/v1/deliveries/1/replay", token); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET replay = %d, want 405", w.Code)
	}
}

func TestProbes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	check := func(t *testing.T, target string, want int, wantBody string) string {
		t.Helper()
		w := f.do(t, "GET", target, "")
		if w.Code != want || !strings.HasPrefix(w.Body.String(), wantBody) {
			t.Errorf("GET %s = %d %q, want %d %q", target, w.Code, w.Body, want, wantBody)
		}
		return w.Body.String()
	}
	t.Run("open", func(t *testing.T) {
		check(t, "/healthz", 200, "ok")
		check(t, "/readyz", 200, "ok")
	})
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("closed", func(t *testing.T) {
		check(t, "/healthz", 200, "ok")
		// The last check's answer stands for up to a second.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if f.do(t, "GET", "/readyz", "").Code == http.StatusServiceUnavailable {
				break
			}
		}
		body := check(t, "/readyz", 503, "store not ready")
		if strings.Contains(body, f.path) || strings.Contains(body, "sql") {
			t.Errorf("GET /readyz = %q, want no database detail", body)
		}
		// Store failures behind the admin API are a short 500, without detail.
		w := f.do(t, "GET", "/api/v1/stats", token)
		if w.Code != 500 || strings.TrimSpace(w.Body.String()) != `{"error":"internal error"}` {
			t.Errorf("GET /api/v1/stats on a closed store = %d %s, want 500 internal error", w.Code, w.Body)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	w := f.do(t, "GET", "/metrics", "")
	if w.Code != 200 {
		t.Fatalf("GET /metrics = %d, want 200", w.Code)
	}
	for _, want := range []string{
		"# TYPE hookwise_jobs gauge",
		`hookwise_jobs{state="available"} 3`,
		`hookwise_jobs{state="completed"} 10`,
		`hookwise_jobs{state="discarded"} 0`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET /metrics = %s, want it to contain %s", w.Body, want)
		}
	}
}

func TestMetricsJobCountsFail(t *testing.T) {
	t.Parallel()
	q := &fakeQueue{err: errors.New("job counts: postgres://user:pw@db/hookwise unreachable")}
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookwise_other", Help: "Another metric."})
	reg := prometheus.NewRegistry()
	reg.MustRegister(web.JobsCollector(q), other)
	h := web.NewHandler(web.Options{Gatherer: reg})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "hookwise_other 0") {
		t.Errorf("GET /metrics with failing job counts = %d %s, want 200 with the other metrics", w.Code, body)
	}
	if strings.Contains(body, "pw@") {
		t.Errorf("GET /metrics = %s, want no error detail", body)
	}
}

func TestWebhookMounted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	for _, path := range []string{"/webhook", "/github-webhook"} {
		w := f.do(t, "POST", path, "")
		if w.Code != 202 || w.Body.String() != "webhook "+path {
			t.Errorf("POST %s = %d %q, want 202 from the webhook handler", path, w.Code, w.Body)
		}
		if w := f.do(t, "GET", path, ""); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s = %d, want 405", path, w.Code)
		}
	}
}

// The dead-letter queue through the admin API: the failed delivery is
// listed and shown with its reason; retrying queues it again (and a second
// retry is a conflict); discarding takes it out but keeps why it failed.
func TestDeadLetterAPI(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "tok")
	failed := f.guids[1]
	call := func(method, target, tok string) (int, string) {
		t.Helper()
		rec := f.do(t, method, target, tok)
		return rec.Code, rec.Body.String()
	}

	code, body := call(http.MethodGet, "/api/v1/dlq", "tok")
	var list struct {
		DeadLetters []struct {
			GUID   string `json:"guid"`
			Reason string `json:"reason"`
		} `json:"dead_letters"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/dlq = %d %s (%v)", code, body, err)
	}
	if len(list.DeadLetters) != 1 || list.DeadLetters[0].GUID != failed || list.DeadLetters[0].Reason != "github: 502" {
		t.Errorf("dead letters = %+v, want only %s with reason %q", list.DeadLetters, failed, "github: 502")
	}

	code, body = call(http.MethodGet, "/api/v1/dlq/"+failed, "tok")
	if code != http.StatusOK || !strings.Contains(body, `"reason":"github: 502"`) || !strings.Contains(body, `"jobs":[]`) {
		t.Errorf("GET /api/v1/dlq/%s = %d %s, want the delivery with its reason and no River jobs", failed, code, body)
	}
	if code, _ := call(http.MethodPost, "/api/v1/dlq/"+f.guids[0]+"/retry", "tok"); code != http.StatusConflict {
		t.Errorf("retry of a done delivery = %d, want %d", code, http.StatusConflict)
	}
	if code, body := call(http.MethodPost, "/api/v1/dlq/"+failed+"/retry", "tok"); code != http.StatusAccepted {
		t.Fatalf("retry = %d %s, want %d", code, body, http.StatusAccepted)
	}
	d, err := f.st.FindDelivery(t.Context(), failed)
	if err != nil || d.Status != store.StatusQueued {
		t.Errorf("after retry: status = %q (%v), want queued", d.Status, err)
	}
	var jobs int
	if err := f.st.DB.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery'
		AND json_extract(args, '$.delivery_id') = ?`, d.ID).Scan(&jobs); err != nil || jobs != 1 {
		t.Errorf("process jobs for the retried delivery = %d (%v), want 1", jobs, err)
	}
	if code, _ := call(http.MethodPost, "/api/v1/dlq/"+failed+"/retry", "tok"); code != http.StatusConflict {
		t.Errorf("second retry = %d, want %d", code, http.StatusConflict)
	}

	if err := f.st.SetDeliveryStatus(t.Context(), d.ID, store.StatusFailed, "claude: 401 authentication_error"); err != nil {
		t.Fatal(err)
	}
	if code, body := call(http.MethodPost, "/api/v1/dlq/"+failed+"/discard", "tok"); code != http.StatusOK {
		t.Fatalf("discard = %d %s", code, body)
	}
	d, _ = f.st.FindDelivery(t.Context(), failed)
	if d.Status != store.StatusDiscarded || !strings.Contains(d.Reason, "401") {
		t.Errorf("after discard: %q %q, want discarded, still saying why it failed", d.Status, d.Reason)
	}
	if code, body := call(http.MethodGet, "/api/v1/dlq", "tok"); code != http.StatusOK || strings.Contains(body, failed) {
		t.Errorf("GET /api/v1/dlq after discard = %d %s, want it gone", code, body)
	}
	if code, _ := call(http.MethodGet, "/api/v1/dlq", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/dlq without a token = %d, want %d", code, http.StatusUnauthorized)
	}
}

// GET /api/v1/costs sums the settled rows of the usage ledger over a window
// of whole UTC days.
func TestCosts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, token)
	at := func(day, hour int) int64 { return time.Date(2026, 11, day, hour, 0, 0, 0, time.UTC).UnixMilli() }
	for i, r := range []struct {
		at            int64
		repo, outcome string
		in, micros    int64
	}{
		{at(1, 0), "octo/a", "ok", 100, 1_000},
		{at(15, 12), "octo/a", "invalid_output", 200, 2_000},
		{at(15, 13), "octo/b", "ok", 400, 8_000},
		{at(30, 23), "octo/b", "ok", 800, 16_000},
		{at(15, 14), "octo/b", "reserved", 0, 0},  // not settled: not counted
		{at(31, 0), "octo/a", "ok", 1600, 32_000}, // December 1st: outside
	} {
		_, err := f.st.DB.Exec(`INSERT INTO hw_usage (created_at, expires_at, delivery_id, repo, owner, thread,
			event, kind, model, outcome, estimate_micros, input_tokens, cost_micros)
			VALUES (?, ?, ?, ?, 'octo', ?, 'issues.opened', 'issue', 'claude-test', ?, 50000, ?, ?)`,
			r.at, r.at, f.ids[0], r.repo, fmt.Sprintf("%s#%d", r.repo, i), r.outcome, r.in, r.micros)
		if err != nil {
			t.Fatal(err)
		}
	}
	type row struct {
		Key         string  `json:"key"`
		Calls       int64   `json:"calls"`
		InputTokens int64   `json:"input_tokens"`
		CostUSD     float64 `json:"cost_usd"`
	}
	type answer struct {
		By    string  `json:"by"`
		Since string  `json:"since"`
		Until *string `json:"until"`
		Rows  []row   `json:"rows"`
		Total row     `json:"total"`
	}
	november := "2026-11-30"
	orNull := func(s *string) string {
		if s == nil {
			return "null"
		}
		return *s
	}
	tests := []struct {
		query string
		want  answer
	}{
		{"?since=2026-11-01&until=2026-11-30", answer{"day", "2026-11-01", &november, []row{
			{"2026-11-01", 1, 100, 0.001}, {"2026-11-15", 2, 600, 0.01}, {"2026-11-30", 1, 800, 0.016},
		}, row{"", 4, 1500, 0.027}}},
		{"?by=repo&since=2026-11-01&until=2026-11-30", answer{"repo", "2026-11-01", &november, []row{
			{"octo/b", 2, 1200, 0.024}, {"octo/a", 2, 300, 0.003},
		}, row{"", 4, 1500, 0.027}}},
		{"?by=repo&since=2026-11-02&until=2026-11-30&repo=octo/a", answer{"repo", "2026-11-02", &november, []row{
			{"octo/a", 1, 200, 0.002},
		}, row{"", 1, 200, 0.002}}},
		{"?by=model&since=2026-11-16", answer{"model", "2026-11-16", nil, []row{
			{"claude-test", 2, 2400, 0.048},
		}, row{"", 2, 2400, 0.048}}},
		{"?by=kind&since=2027-01-01", answer{"kind", "2027-01-01", nil, []row{}, row{}}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := f.do(t, "GET", "/api/v1/costs"+tt.query, token)
			if w.Code != http.StatusOK {
				t.Fatalf("GET /api/v1/costs%s = %d %s, want 200", tt.query, w.Code, w.Body)
			}
			var got answer
			decode(t, w, &got)
			if got.By != tt.want.By || got.Since != tt.want.Since || orNull(got.Until) != orNull(tt.want.Until) {
				t.Errorf("GET /api/v1/costs%s = by %q since %q until %s, want %q %q %s", tt.query,
					got.By, got.Since, orNull(got.Until), tt.want.By, tt.want.Since, orNull(tt.want.Until))
			}
			if got.Rows == nil {
				t.Errorf("GET /api/v1/costs%s rows = null, want a list", tt.query)
			}
			if !slices.Equal(got.Rows, tt.want.Rows) || got.Total != tt.want.Total {
				t.Errorf("GET /api/v1/costs%s = rows %v total %v, want %v %v", tt.query, got.Rows, got.Total, tt.want.Rows, tt.want.Total)
			}
		})
	}

	t.Run("default window", func(t *testing.T) {
		now := time.Now().UTC()
		old := now.AddDate(0, 0, -40).UnixMilli()
		if _, err := f.st.DB.Exec(`INSERT INTO hw_usage (created_at, expires_at, delivery_id, repo, owner, thread,
			event, kind, model, outcome, estimate_micros, cost_micros) VALUES
			(?, ?, 1, 'octo/c', 'octo', 'octo/c#1', 'issues.opened', 'issue', 'claude-test', 'ok', 0, 1000),
			(?, ?, 1, 'octo/c', 'octo', 'octo/c#2', 'issues.opened', 'issue', 'claude-test', 'ok', 0, 3000)`,
			now.UnixMilli(), now.UnixMilli(), old, old); err != nil {
			t.Fatal(err)
		}
		w := f.do(t, "GET", "/api/v1/costs?repo=octo/c", token)
		var got answer
		decode(t, w, &got)
		want := now.AddDate(0, 0, -30).Format(time.DateOnly)
		if w.Code != 200 || got.By != "day" || got.Since != want || got.Until != nil || got.Total.Calls != 1 {
			t.Errorf("GET /api/v1/costs?repo=octo/c = %d %s, want by day since %s, no until, 1 call", w.Code, w.Body, want)
		}
	})

	t.Run("bad query", func(t *testing.T) {
		for _, tt := range []struct{ query, want string }{
			{"?by=week", "by: want day, repo, model, event or kind"},
			{"?since=yesterday", "since: want a date such as 2026-11-01"},
			{"?since=2026-11-31", "since: want a date such as 2026-11-01"},
			{"?until=30/11/2026", "until: want a date such as 2026-11-30"},
			{"?since=2026-11-02&until=2026-11-01", "until: want a date no earlier than since"},
		} {
			w := f.do(t, "GET", "/api/v1/costs"+tt.query, token)
			var got map[string]string
			decode(t, w, &got)
			if w.Code != http.StatusBadRequest || got["error"] != tt.want {
				t.Errorf("GET /api/v1/costs%s = %d %s, want 400 %q", tt.query, w.Code, w.Body, tt.want)
			}
		}
	})

	if w := f.do(t, "GET", "/api/v1/costs", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/costs without a token = %d, want 401", w.Code)
	}
}

// The budget gauges come from the ledger at each scrape: what a scope
// spent in the period that holds now, every configured budget listed, and
// zero once the period has reset, whether or not a call was made since.
func TestMetricsBudgets(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := st.Reserve(ctx, store.UsageCall{Repo: "octo/a", Owner: "octo", Event: "issues.opened", Kind: "issue",
		Model: "claude-test", EstimateMicros: 90_000}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, id, store.Settlement{Model: "claude-test", Outcome: "ok", Input: 1000, Micros: 250_000}); err != nil {
		t.Fatal(err)
	}
	budgets := cost.NewBudgets(config.BudgetConfig{Daily: 2, Scopes: []config.BudgetScope{{Match: "repo:octo/b", Daily: 1}}})
	scrape := func(now time.Time) string {
		t.Helper()
		reg := prometheus.NewRegistry()
		reg.MustRegister(web.BudgetCollector(st, budgets, func() time.Time { return now }))
		w := httptest.NewRecorder()
		web.NewHandler(web.Options{Gatherer: reg}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		return w.Body.String()
	}
	for _, tc := range []struct {
		name string
		now  time.Time
		want []string
	}{
		{"today", time.Now(), []string{
			`hookwise_budget_spent_dollars{period="day",scope="global"} 0.25`,
			`hookwise_budget_limit_dollars{period="day",scope="global"} 2`,
			`hookwise_budget_spent_dollars{period="day",scope="repo:octo/b"} 0`,
			`hookwise_budget_limit_dollars{period="day",scope="repo:octo/b"} 1`,
		}},
		{"tomorrow", time.Now().AddDate(0, 0, 1), []string{
			`hookwise_budget_spent_dollars{period="day",scope="global"} 0`,
		}},
	} {
		body := scrape(tc.now)
		for _, want := range tc.want {
			if !strings.Contains(body, want) {
				t.Errorf("GET /metrics %s = %s, want it to contain %s", tc.name, body, want)
			}
		}
	}
}
