package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/webhook"
)

// The flood: one address (127.0.0.2) opens floodSlow connections that each
// announce 1 MiB, send all of it but the last KiB at once and then trickle
// a byte every floodTrickle, and floodPosters loops posting 1 MiB bodies,
// half with no signature and half with a forged one. Meanwhile GitHub
// (127.0.0.1) delivers floodRate signed 11.5 KB deliveries a second. The
// flood's goroutines pause floodPause after each refusal: they share this
// machine's two cores with the server they attack, and a real attacker's
// reconnects cost the attacker's CPU, not ours.
const (
	floodSlow    = 300
	floodPosters = 4
	floodBody    = 1 << 20
	floodTrickle = 100 * time.Millisecond
	floodPause   = 20 * time.Millisecond
	floodRate    = 200
	floodWarmup  = 2 * time.Second
)

var (
	githubAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	floodAddr  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
)

// unfair turns the per-client limits off: the handler as it would be
// without them, with only the global body budget.
func unfair(o *webhook.Options) {
	o.ClientBodyShare, o.ClientMaxUnverified, o.PenaltyFailures = 1, -1, -1
}

// floodResult is what GitHub's deliveries met during a flood.
type floodResult struct {
	sent, ok      int
	statuses      map[int]int // GitHub's answers by status (0: transport error)
	p50, p99, max time.Duration
	stored        int         // rows in hw_deliveries afterwards
	flood         map[int]int // the flood posters' answers by status
}

func (r floodResult) String() string {
	return fmt.Sprintf("GitHub: %d/%d 2xx, statuses %v, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d stored; flood posts answered %v",
		r.ok, r.sent, r.statuses, ms(r.p50), ms(r.p99), ms(r.max), r.stored, r.flood)
}

// Acceptance: while one address floods the webhook, every delivery GitHub
// makes from another is acknowledged 2xx within 250 ms (p99), and stored.
func TestFloodKeepsGitHubServed(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a real server for 12 s")
	}
	limit, rate, d := 250*time.Millisecond, floodRate, 10*time.Second
	if raceEnabled {
		// The race detector slows everything several times over: the bound
		// is then GitHub's own timeout, on a shorter, gentler run.
		limit, rate, d = 10*time.Second, floodRate/4, 5*time.Second
	}
	res := runFlood(t, nil, rate, d)
	t.Log(res)
	if res.ok != res.sent {
		t.Errorf("GitHub's deliveries during the flood: %d of %d 2xx (statuses %v), want all", res.ok, res.sent, res.statuses)
	}
	if res.p99 >= limit {
		t.Errorf("p99 of GitHub's deliveries during the flood = %.1f ms, want under %s", ms(res.p99), limit)
	}
	if res.stored != res.sent {
		t.Errorf("rows stored = %d, want %d (one per delivery)", res.stored, res.sent)
	}
}

// BenchmarkFlood measures GitHub's deliveries during the flood with the
// per-client limits (fair) and without them (unfair, only the global body
// budget). b.N is the number of deliveries, sent at floodRate a second:
// -benchtime 2000x is a 10 s flood. See BENCHMARKS.md.
func BenchmarkFlood(b *testing.B) {
	for _, mode := range []struct {
		name string
		tune func(*webhook.Options)
	}{{"fair", nil}, {"unfair", unfair}} {
		b.Run(mode.name, func(b *testing.B) {
			res := runFlood(b, mode.tune, floodRate, time.Duration(b.N)*time.Second/floodRate)
			b.Log(res)
			b.ReportMetric(100*float64(res.ok)/float64(max(res.sent, 1)), "%2xx")
			b.ReportMetric(ms(res.p50), "p50-ms")
			b.ReportMetric(ms(res.p99), "p99-ms")
			b.ReportMetric(ms(res.max), "max-ms")
			b.ReportMetric(float64(res.stored), "stored")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// runFlood serves a handler (tuned by tune, if not nil) on loopback with a
// SQLite store, floods it from floodAddr and delivers from githubAddr at
// rate a second for d.
func runFlood(tb testing.TB, tune func(*webhook.Options), rate int, d time.Duration) floodResult {
	tb.Helper()
	e := newHandlerTuned(tb, filepath.Join(tb.TempDir(), "hookwise.db"), nil, tune)
	target := e.srv.URL + "/webhook"
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.Cleanup(func() { stop(); wg.Wait() })

	var floodMu sync.Mutex
	flood := map[int]int{}
	bulk := bytes.Repeat([]byte(" "), floodBody-1<<10) // shared: the flood's own memory is not what is measured
	for range floodSlow {
		wg.Go(func() { slowSender(ctx, e.srv.Listener.Addr().String(), bulk) })
	}
	for i := range floodPosters {
		wg.Go(func() {
			for code := range bigPoster(ctx, target, i%2 == 1) {
				floodMu.Lock()
				flood[code]++
				floodMu.Unlock()
			}
		})
	}
	select {
	case <-time.After(floodWarmup):
	case <-ctx.Done():
	}
	res := deliverAtRate(tb, target, rate, d)
	stop()
	wg.Wait()
	res.stored = e.count(tb, `SELECT COUNT(*) FROM hw_deliveries`)
	floodMu.Lock()
	res.flood = maps.Clone(flood)
	floodMu.Unlock()
	return res
}

// slowSender keeps one slow body going from floodAddr until ctx ends:
// announce floodBody, send bulk (all but its last KiB), trickle the rest;
// start again when the server refuses or cuts it off.
func slowSender(ctx context.Context, addr string, bulk []byte) {
	dialer := &net.Dialer{LocalAddr: floodAddr}
	head := fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: hookwise\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-GitHub-Event: issues\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=%s\r\n\r\n",
		floodBody, strings.Repeat("0", 64))
	for ctx.Err() == nil {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			stopClose := context.AfterFunc(ctx, func() { conn.Close() })
			_, err = io.WriteString(conn, head)
			if err == nil {
				_, err = conn.Write(bulk)
			}
			for err == nil && ctx.Err() == nil {
				time.Sleep(floodTrickle)
				_, err = conn.Write([]byte(" "))
			}
			stopClose()
			conn.Close()
		}
		sleep(ctx, floodPause)
	}
}

// bigPoster posts floodBody bodies from floodAddr until ctx ends, with no
// signature or a forged one, and sends each answer's status on the
// returned channel (0 for a transport error).
func bigPoster(ctx context.Context, target string, forged bool) <-chan int {
	codes := make(chan int)
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: floodAddr}).DialContext}}
	body := bytes.Repeat([]byte(" "), floodBody)
	go func() {
		defer close(codes)
		defer client.CloseIdleConnections()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "issues")
			req.Header.Set("X-GitHub-Delivery", "flood")
			if forged {
				req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("not the secret"), body))
			}
			code := 0
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			if ctx.Err() != nil {
				return
			}
			codes <- code
			sleep(ctx, floodPause)
		}
	}()
	return codes
}

// deliverAtRate sends signed issues.opened deliveries from githubAddr at
// rate a second for d, each on its own schedule (a slow answer does not
// delay the next delivery), and collects their answers.
func deliverAtRate(tb testing.TB, target string, rate int, d time.Duration) floodResult {
	tb.Helper()
	payload := issuesOpenedPayload(tb, benchPayloadSize)
	sig := webhook.Sign(testSecret, payload)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: githubAddr}).DialContext,
		MaxIdleConnsPerHost: 64,
	}}
	defer client.CloseIdleConnections()
	n := max(1, int(d*time.Duration(rate)/time.Second))
	codes := make([]int, n)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for range n {
		<-tick.C
		i := next.Add(1) - 1
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", sig)
			req.Header.Set("X-GitHub-Event", "issues")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("00000000-0000-4000-9000-%012d", i))
			req.Header.Set("X-GitHub-Hook-ID", "424242")
			t0 := time.Now()
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
			lat[i] = time.Since(t0)
		})
	}
	wg.Wait()
	res := floodResult{sent: n, statuses: map[int]int{}}
	for _, c := range codes {
		res.statuses[c]++
		if c >= 200 && c < 300 {
			res.ok++
		}
	}
	slices.Sort(lat)
	res.p50, res.p99, res.max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	return res
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
