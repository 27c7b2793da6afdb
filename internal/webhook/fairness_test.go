package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwise/hookwise/internal/logtest"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/webhook"
)

// tuned is newHandlerTuned on a temp SQLite file.
func tuned(t *testing.T, tune func(*webhook.Options)) *env {
	t.Helper()
	return newHandlerTuned(t, filepath.Join(t.TempDir(), "hookwise.db"), nil, tune)
}

// from returns an HTTP client whose connections come from the loopback
// address ip.
func from(ip string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext,
	}}
}

// stall opens a connection from ip and sends a request for a delivery
// signed with a well-formed but wrong signature (or with sig, if set) that
// announces announced bytes and sends only sent of them.
func (e *env) stall(t *testing.T, ip string, announced, sent int, sig string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := d.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if sig == "" {
		sig = "sha256=" + strings.Repeat("0", 64)
	}
	fmt.Fprintf(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-GitHub-Event: issues\r\nX-GitHub-Delivery: stalled\r\nX-Hub-Signature-256: %s\r\n\r\n", announced, sig)
	if _, err := conn.Write(bytes.Repeat([]byte(" "), sent)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answer reads the response to the request sent on conn, within 10 s.
func answer(t *testing.T, conn net.Conn) *http.Response {
	t.Helper()
	resp := answerWithin(conn, 10*time.Second)
	if resp == nil {
		t.Fatal("no answer on a stalled request within 10s")
	}
	return resp
}

// answerWithin reads the response to the request sent on conn, or returns
// nil if none comes within d.
func answerWithin(conn net.Conn, d time.Duration) *http.Response {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil
	}
	resp.Body.Close()
	return resp
}

// refusedBeside reports whether one more stalled request from ip, beside
// those already stalled, is answered 429 with Retry-After: 1 (and a closed
// connection) within 3 s. One that is not answered got in ahead of (and
// instead of) one of the others: it stays, stalled like them.
func (e *env) refusedBeside(t *testing.T, ip string, announced, sent int) bool {
	t.Helper()
	conn := e.stall(t, ip, announced, sent, "")
	resp := answerWithin(conn, 3*time.Second)
	return resp != nil && resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "1" && resp.Close
}

// postFrom posts a small signed delivery from ip and returns the status.
func (e *env) postFrom(t *testing.T, ip, guid string, pad int) int {
	t.Helper()
	b := append([]byte(`{"action":"opened","repository":{"full_name":"o/r"},"sender":{"login":"u"}`), bytes.Repeat([]byte(" "), pad)...)
	return do(t, from(ip), signedRequest(t, e.srv.URL+"/webhook", "issues", guid, "1", "application/json", append(b, '}')))
}

// One address's unverified bodies hold at most its share of the body
// memory: its next body waits, then is answered 429, while a 1 MB delivery
// from another address finds room.
func TestClientBodyShare(t *testing.T) {
	t.Parallel()
	e := tuned(t, func(o *webhook.Options) { o.BodyMemory, o.QueueWait = 4<<20, 300*time.Millisecond }) // share: 256 KiB
	for range 2 {
		e.stall(t, "127.0.0.2", 200_000, 100_000, "") // each holds two 64 KiB chunks
	}
	eventually(t, "a third stalled body from 127.0.0.2 is answered 429", func() bool {
		return e.refusedBeside(t, "127.0.0.2", 200_000, 100_000)
	})
	if got := e.postFrom(t, "127.0.0.1", "big", 1_000_000); got != http.StatusAccepted {
		t.Errorf("a 1 MB delivery from 127.0.0.1 beside the stalled ones = %d, want 202", got)
	}
}

// One address has at most ClientMaxUnverified requests being read; more
// are answered 429 without a byte of their body read. Other addresses are
// served.
func TestClientMaxUnverified(t *testing.T) {
	t.Parallel()
	e := tuned(t, func(o *webhook.Options) { o.ClientMaxUnverified, o.QueueWait = 2, 300*time.Millisecond })
	e.stall(t, "127.0.0.2", 1000, 10, "")
	e.stall(t, "127.0.0.2", 1000, 10, "")
	eventually(t, "a third request from 127.0.0.2 is answered 429 before its body", func() bool {
		return e.refusedBeside(t, "127.0.0.2", 1000, 0)
	})
	if got := e.postFrom(t, "127.0.0.1", "other", 0); got != http.StatusAccepted {
		t.Errorf("a delivery from 127.0.0.1 = %d, want 202", got)
	}
}

// Five failed signatures within a minute put an address in the penalty
// box: even a good delivery from it is answered 429, with Retry-After,
// before its body is read, until the penalty ends. Other addresses are
// served throughout.
func TestPenaltyBox(t *testing.T) {
	t.Parallel()
	e := tuned(t, func(o *webhook.Options) { o.PenaltyDuration = 2 * time.Second })
	bad := []byte(`{"action":"opened"}`)
	for i := range 5 {
		req := signedRequest(t, e.srv.URL+"/webhook", "issues", fmt.Sprintf("bad-%d", i), "1", "application/json", bad)
		req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("wrong secret"), bad))
		if got := do(t, from("127.0.0.2"), req); got != http.StatusUnauthorized {
			t.Fatalf("wrong signature #%d = %d, want 401", i+1, got)
		}
	}
	good := []byte(`{"action":"opened","repository":{"full_name":"o/r"}}`)
	conn := e.stall(t, "127.0.0.2", len(good), 0, webhook.Sign(testSecret, good))
	resp := answer(t, conn)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("a good delivery from the penalised address, body unsent = %d, Retry-After %q; want 429, 2",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := e.postFrom(t, "127.0.0.1", "meanwhile", 0); got != http.StatusAccepted {
		t.Errorf("a delivery from 127.0.0.1 meanwhile = %d, want 202", got)
	}
	time.Sleep(2 * time.Second)
	if got := e.postFrom(t, "127.0.0.2", "after", 0); got != http.StatusAccepted {
		t.Errorf("a delivery from 127.0.0.2 after the penalty = %d, want 202", got)
	}
}

// A refused source is answered 403 before its body is read.
func TestAllowSources(t *testing.T) {
	t.Parallel()
	e := tuned(t, func(o *webhook.Options) {
		o.Allow = webhook.NewAllowlist([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, false)
	})
	if got := e.postFrom(t, "127.0.0.1", "allowed", 0); got != http.StatusAccepted {
		t.Errorf("a delivery from an allowed source = %d, want 202", got)
	}
	conn := e.stall(t, "127.0.0.2", 1<<20, 0, "")
	if resp := answer(t, conn); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a request from another source, body unsent = %d, want 403", resp.StatusCode)
	}
}

// Rejections are logged a few lines a second, with the count of lines held
// back; the metrics count every one.
func TestRejectionLogsAreLimited(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	reg := prometheus.NewRegistry()
	e := tuned(t, func(o *webhook.Options) {
		o.Logger, o.Registerer = slog.New(slog.NewJSONHandler(&logs, nil)), reg
	})
	c := from("127.0.0.2")
	const n = 200
	for i := range n {
		req := signedRequest(t, e.srv.URL+"/webhook", "issues", fmt.Sprintf("unsigned-%d", i), "1", "application/json", []byte(`{}`))
		req.Header.Del("X-Hub-Signature-256")
		do(t, c, req)
	}
	lines := strings.Count(logs.String(), `"msg":"webhook rejected"`)
	// The burst allows 20; a line still being written when the count is
	// taken may be missing, so the floor is looser than the ceiling.
	if lines < 10 || lines > 40 {
		t.Errorf("%d rejections logged %d lines, want about the burst of 20 and a few a second after", n, lines)
	}
	if counted := counterSum(t, reg, "hookwise_webhook_deliveries_total"); counted != n {
		t.Errorf("hookwise_webhook_deliveries_total = %v, want %d", counted, n)
	}
	time.Sleep(time.Second)
	req := signedRequest(t, e.srv.URL+"/webhook", "issues", "later", "1", "application/json", []byte(`{}`))
	req.Header.Del("X-Hub-Signature-256")
	do(t, c, req)
	if out := logs.String(); !strings.Contains(out, `"suppressed":`) {
		t.Errorf("no log line says how many were held back: %s", out[max(0, len(out)-600):])
	}
}

// counterSum gathers reg and sums the samples of the counter named name.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// Payloads nested deeper than MaxDepth are 400 before the JSON validator
// (which recurses) sees them, however deep: 25 MB of "[" once crashed the
// process. The handler keeps serving.
func TestDeepJSON(t *testing.T) {
	t.Parallel()
	e := newHandler(t)
	target := e.srv.URL + "/webhook"
	nest := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	tests := []struct {
		name, contentType string
		body              []byte
		want              int
	}{
		{"25 MB of [", "application/json", bytes.Repeat([]byte("["), 25_000_000), http.StatusBadRequest},
		{"objects 100,000 deep", "application/json", nest(100_000), http.StatusBadRequest},
		{"objects 100,000 deep in a form", "application/x-www-form-urlencoded",
			[]byte(url.Values{"payload": {string(nest(100_000))}}.Encode()), http.StatusBadRequest},
		{"objects one past the limit", "application/json", nest(webhook.MaxDepth + 1), http.StatusBadRequest},
		{"objects at the limit", "application/json", nest(webhook.MaxDepth), http.StatusAccepted},
		{"brackets in a string", "application/json",
			[]byte(`{"action":"opened","issue":{"body":"` + strings.Repeat("[", 10_000) + `"}}`), http.StatusAccepted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := signedRequest(t, target, "issues", fmt.Sprintf("deep-%d", i), "1", tt.contentType, tt.body)
			if got := do(t, &http.Client{}, req); got != tt.want {
				t.Errorf("POST %s = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
	if got := e.postPadded(t, "after-deep", 0); got != http.StatusAccepted {
		t.Errorf("a delivery after the deep ones = %d, want 202", got)
	}
}

// gatedPersist holds every Persist until release is closed.
type gatedPersist struct {
	webhook.Persister
	release chan struct{}
}

func (g *gatedPersist) Persist(ctx context.Context, batch []store.Delivery) ([]bool, error) {
	<-g.release
	return g.Persister.Persist(ctx, batch)
}

// A store slower than the senders is told apart from the refusals that
// hold back one address: its 429s are counted with reason "queue".
func TestQueueFullIsCounted(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	g := &gatedPersist{release: make(chan struct{})}
	e := newHandlerTuned(t, filepath.Join(t.TempDir(), "hookwise.db"), func(p webhook.Persister) webhook.Persister {
		g.Persister = p
		return g
	}, func(o *webhook.Options) { o.MaxBatch, o.QueueWait, o.Registerer = 1, 200*time.Millisecond, reg })
	codes := make(chan int, 10)
	for i := range 10 { // one committing, four queued, the rest find no place
		go func() { codes <- e.postFrom(t, "127.0.0.1", fmt.Sprintf("queued-%d", i), 0) }()
	}
	throttled := 0
	for range 5 {
		if <-codes == http.StatusTooManyRequests {
			throttled++
		}
	}
	close(g.release)
	for range 5 {
		<-codes
	}
	if throttled != 5 {
		t.Errorf("%d of the first 5 answers were 429, want 5", throttled)
	}
	if got := refusedFor(t, reg, "queue"); got != 5 {
		t.Errorf(`hookwise_webhook_refused_total{reason="queue"} = %v, want 5`, got)
	}
}

// refusedFor returns hookwise_webhook_refused_total for reason.
func refusedFor(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "hookwise_webhook_refused_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
