// Package floodtest floods a webhook endpoint from one loopback address
// while GitHub delivers to it from another, and measures what GitHub's
// deliveries met. It is for tests and benchmarks only; production code
// does not import it.
package floodtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/webhook"
)

// The flood: one address (FloodAddr) opens Slow connections that each
// announce Body bytes, send all of it but the last KiB at once and then
// trickle a byte every Trickle, and Posters loop posting Body-byte bodies,
// half with no signature and half with a forged one. Meanwhile GitHub
// (GitHubAddr) delivers Rate signed deliveries a second. The flood's
// goroutines pause Pause after each refusal: they share this machine's two
// cores with the server they attack, and a real attacker's reconnects cost
// the attacker's CPU, not ours.
const (
	Slow    = 300
	Posters = 4
	Body    = 1 << 20
	Trickle = 100 * time.Millisecond
	Pause   = 20 * time.Millisecond
	Rate    = 200
	Warmup  = 2 * time.Second
)

var (
	GitHubAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	FloodAddr  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
)

// Flood is a running flood; Stop ends it.
type Flood struct {
	stop    context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	answers map[int]int
}

// Start floods target (a webhook URL) from FloodAddr until Stop. It does
// not wait out Warmup: the caller does, before measuring.
func Start(target string) (*Flood, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	f := &Flood{stop: stop, answers: map[int]int{}}
	bulk := bytes.Repeat([]byte(" "), Body-1<<10) // shared: the flood's own memory is not what is measured
	for range Slow {
		f.wg.Go(func() { slowSender(ctx, u.Host, u.Path, bulk) })
	}
	for i := range Posters {
		f.wg.Go(func() {
			for code := range bigPoster(ctx, target, i%2 == 1) {
				f.mu.Lock()
				f.answers[code]++
				f.mu.Unlock()
			}
		})
	}
	return f, nil
}

// Stop ends the flood, waits for its goroutines and returns the posters'
// answers by status (0: transport error). It may be called again.
func (f *Flood) Stop() map[int]int {
	f.stop()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.answers)
}

// slowSender keeps one slow body going to path on addr from FloodAddr
// until ctx ends: announce Body, send bulk (all but its last KiB), trickle
// the rest; start again when the server refuses or cuts it off.
func slowSender(ctx context.Context, addr, path string, bulk []byte) {
	dialer := &net.Dialer{LocalAddr: FloodAddr}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: hookwise\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"+
		"X-GitHub-Event: issues\r\nX-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=%s\r\n\r\n",
		path, Body, strings.Repeat("0", 64))
	for ctx.Err() == nil {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			stopClose := context.AfterFunc(ctx, func() { conn.Close() })
			_, err = io.WriteString(conn, head)
			if err == nil {
				_, err = conn.Write(bulk)
			}
			for err == nil && ctx.Err() == nil {
				time.Sleep(Trickle)
				_, err = conn.Write([]byte(" "))
			}
			stopClose()
			conn.Close()
		}
		sleep(ctx, Pause)
	}
}

// bigPoster posts Body-byte bodies from FloodAddr until ctx ends, with no
// signature or a forged one, and sends each answer's status on the
// returned channel (0 for a transport error).
func bigPoster(ctx context.Context, target string, forged bool) <-chan int {
	codes := make(chan int)
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: FloodAddr}).DialContext}}
	body := bytes.Repeat([]byte(" "), Body)
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
			sleep(ctx, Pause)
		}
	}()
	return codes
}

// Result is what GitHub's deliveries met.
type Result struct {
	Sent, OK      int
	Statuses      map[int]int // answers by status (0: transport error)
	P50, P99, Max time.Duration
}

func (r Result) String() string {
	return fmt.Sprintf("GitHub: %d/%d 2xx, statuses %v, p50 %.1f ms, p99 %.1f ms, max %.1f ms",
		r.OK, r.Sent, r.Statuses, MS(r.P50), MS(r.P99), MS(r.Max))
}

// GUID is the X-GitHub-Delivery of GitHub's delivery i.
func GUID(i int) string { return fmt.Sprintf("00000000-0000-4000-9000-%012d", i) }

// Deliver sends signed issues deliveries from GitHubAddr to target at rate
// a second for d, each on its own schedule (a slow answer does not delay
// the next delivery), and collects their answers. payload(i) is the body
// of delivery i.
func Deliver(target string, secret []byte, rate int, d time.Duration, payload func(i int) []byte) Result {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: GitHubAddr}).DialContext,
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
		i := int(next.Add(1) - 1)
		wg.Go(func() {
			body := payload(i)
			req, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Hub-Signature-256", webhook.Sign(secret, body))
			req.Header.Set("X-GitHub-Event", "issues")
			req.Header.Set("X-GitHub-Delivery", GUID(i))
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
	res := Result{Sent: n, Statuses: map[int]int{}}
	for _, c := range codes {
		res.Statuses[c]++
		if c >= 200 && c < 300 {
			res.OK++
		}
	}
	slices.Sort(lat)
	res.P50, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	return res
}

// Repo, Authors and IssueNumber describe the threads of Issue's
// deliveries: delivery i opens issue IssueNumber(i) of Repo, by one of
// Authors logins in turn.
const (
	Repo    = "acme/app"
	Authors = 50
)

// IssueNumber is the issue delivery i opens.
func IssueNumber(i int) int { return i + 1 }

// Issue is the issues.opened payload of delivery i: its own issue of
// Repo, with a title and body long enough to be analysed.
func Issue(i int) []byte {
	n := IssueNumber(i)
	return fake.IssueEvent("opened", Repo, n, fmt.Sprintf("Planner skips run %d", n),
		fmt.Sprintf("The planner skipped scheduled run %d when two jobs shared a cron expression. "+
			"Version 3.2 on Linux amd64; steps: create two jobs with the same schedule and wait a minute.", n),
		fmt.Sprintf("user%02d", i%Authors))
}

// percentile is the p-quantile of sorted, by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// MS is d in milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
