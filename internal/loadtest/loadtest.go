// Package loadtest sends signed synthetic webhook deliveries to a hookwise
// (or anything that takes GitHub's webhooks) and measures the answers: how
// many a second, how fast, with which status codes. `hookwise loadtest`
// runs it against a URL, and the end-to-end benchmark drives the service
// with it.
//
// The deliveries are issues.labeled events on a repository of the reserved
// owner hookwise-loadtest: hookwise stores each, dispatches its job and
// skips it as bookkeeping ("admin"), with no model call and no GitHub
// request. Every Nth may instead be an issues.opened the service really
// analyses (Options.OpenedEvery), for test deployments whose GitHub and
// Anthropic are fakes.
package loadtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a run. Either Rate or Concurrency drives it; Duration,
// Requests or both end it.
type Options struct {
	URL    string
	Secret []byte
	// Rate is deliveries a second, sent on schedule whatever the answers
	// (an open loop); 0 sends them from Concurrency senders, each waiting
	// for its answer before the next (a closed loop).
	Rate float64
	// Concurrency is the number of senders, or with Rate the most
	// deliveries in flight at once: beyond it a delivery waits, and its
	// latency counts from when it was due.
	Concurrency int
	Duration    time.Duration // 0: no time limit
	Requests    int           // 0: no count limit
	// Size is the payload size in bytes; default DefaultSize.
	Size int
	// OpenedEvery makes every Nth delivery an issues.opened that the
	// service analyses, on Repo+"-analysed"; 0 sends none.
	OpenedEvery int
	// Repo is the repository (owner/name) the deliveries are about; default
	// Owner/run-<run id>.
	Repo string
	// Timeout bounds each request; default 10 s, GitHub's.
	Timeout time.Duration
	// Grace is how long the requests still in flight when Duration is up
	// may take before they are cut off; default 1 s.
	Grace time.Duration
	// Progress, when set, is called every ProgressEvery (default 1 s).
	Progress      func(Snapshot)
	ProgressEvery time.Duration
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

// Snapshot is a run's progress so far.
type Snapshot struct {
	Elapsed  time.Duration
	Done     int64   // answered or failed
	OK       int64   // answered 2xx
	Failed   int64   // answered otherwise, or no answer
	InFlight int64   // sent, not answered yet
	Rate     float64 // answers a second since the previous snapshot
}

// Result is what a run measured.
type Result struct {
	Repo      string
	Sent      int // requests started
	Elapsed   time.Duration
	Latency   *Histogram  // of every answer, whatever its status
	Status    map[int]int // answers by HTTP status
	Errors    map[string]int
	Opened    int // issues.opened deliveries among Sent
	CutOff    int // in flight when the run ended, not waited for
	Requested int // Options.Requests
}

// OK is the number of 2xx answers.
func (r *Result) OK() int {
	n := 0
	for code, c := range r.Status {
		if code >= 200 && code <= 299 {
			n += c
		}
	}
	return n
}

// Failed is the number of requests not answered 2xx.
func (r *Result) Failed() int { return r.Sent - r.OK() }

// Throughput is answered requests a second (2xx or not).
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Latency.Count()) / r.Elapsed.Seconds()
}

// Err is nil when every request was answered 2xx, else says how many were
// not.
func (r *Result) Err() error {
	if r.Sent == 0 {
		return errors.New("no request was sent")
	}
	if n := r.Failed(); n > 0 {
		return fmt.Errorf("%d of %d requests were not answered 2xx", n, r.Sent)
	}
	return nil
}

// Check validates o, naming the flag at fault.
func (o *Options) Check() error {
	switch {
	case o.URL == "":
		return errors.New("--url is required")
	case len(o.Secret) == 0:
		return errors.New("--secret or GITHUB_WEBHOOK_SECRET is required")
	case o.Rate < 0:
		return errors.New("--rate must be positive")
	case o.Concurrency < 0:
		return errors.New("--concurrency must be positive")
	case o.Duration < 0:
		return errors.New("--duration must be positive")
	case o.Requests < 0:
		return errors.New("--requests must be positive")
	case o.Duration == 0 && o.Requests == 0:
		return errors.New("give --duration, --requests or both")
	case o.Size < 0 || o.Size > 25<<20:
		return errors.New("--size must be between 0 and 25 MB")
	case o.OpenedEvery < 0:
		return errors.New("--opened-every must be positive")
	}
	return nil
}

// Run sends deliveries until o's limits or ctx end, and returns what they
// met. ctx ending cuts off the requests in flight.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	run := make([]byte, 4)
	_, _ = rand.Read(run)
	if o.Repo == "" {
		o.Repo = Owner + "/run-" + hex.EncodeToString(run)
	}
	labeled, err := newTemplate("labeled", o.Repo, o.Size)
	if err != nil {
		return nil, err
	}
	// The issues to analyse are in a repository of their own: a burst of
	// bookkeeping in the repository of an issue makes the issue's planning
	// look through all of it (a newer event on the same thread may be
	// among it), which is not what a load test means to measure.
	opened, err := newTemplate("opened", o.Repo+"-analysed", o.Size)
	if err != nil {
		return nil, err
	}
	transport := o.Transport
	if transport == nil {
		transport = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        o.Concurrency,
			MaxIdleConnsPerHost: o.Concurrency,
			IdleConnTimeout:     30 * time.Second,
		}
	}
	r := &runner{
		o:       o,
		client:  &http.Client{Transport: transport, Timeout: o.Timeout},
		labeled: labeled,
		opened:  opened,
		run:     hex.EncodeToString(run),
		res: &Result{Repo: o.Repo, Latency: NewHistogram(), Status: map[int]int{}, Errors: map[string]int{},
			Requested: o.Requests},
	}
	defer r.client.CloseIdleConnections()
	return r.drive(ctx), nil
}

type runner struct {
	o       Options
	client  *http.Client
	labeled template
	opened  template
	run     string

	next     atomic.Int64 // index of the next delivery
	inFlight atomic.Int64
	ok       atomic.Int64
	failed   atomic.Int64

	mu  sync.Mutex
	res *Result
}

// drive runs the senders, the progress reports and the deadline.
func (r *runner) drive(ctx context.Context) *Result {
	// issue stops new requests; cut cancels those in flight, Grace after
	// the duration is up.
	issue, stopIssuing := context.WithCancel(ctx)
	defer stopIssuing()
	cutCtx, cut := context.WithCancel(ctx)
	defer cut()
	start := time.Now()
	if r.o.Duration > 0 {
		t := time.AfterFunc(r.o.Duration, func() {
			stopIssuing()
			time.AfterFunc(r.o.Grace, cut)
		})
		defer t.Stop()
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.report(start, stopProgress)
	}()

	var wg sync.WaitGroup
	if r.o.Rate > 0 {
		r.openLoop(issue, cutCtx, start, &wg)
	} else {
		for range r.o.Concurrency {
			wg.Go(func() {
				for issue.Err() == nil {
					i, ok := r.claim()
					if !ok {
						return
					}
					r.send(cutCtx, i, time.Now())
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone

	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Elapsed = elapsed
	r.res.Sent = int(min(r.next.Load(), r.limit()))
	return r.res
}

// limit is the most requests the run may send.
func (r *runner) limit() int64 {
	if r.o.Requests > 0 {
		return int64(r.o.Requests)
	}
	return 1<<63 - 1
}

// claim takes the index of the next delivery, or reports that the count is
// reached.
func (r *runner) claim() (int64, bool) {
	i := r.next.Add(1) - 1
	return i, i < r.limit()
}

// openLoop sends delivery i at start + i/Rate, at most Concurrency in
// flight.
func (r *runner) openLoop(issue, cutCtx context.Context, start time.Time, wg *sync.WaitGroup) {
	slots := make(chan struct{}, r.o.Concurrency)
	interval := time.Duration(float64(time.Second) / r.o.Rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		i, ok := r.claim()
		if !ok {
			return
		}
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-issue.Done():
				r.next.Add(-1) // not sent
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-issue.Done():
			r.next.Add(-1)
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r.send(cutCtx, i, due)
		})
	}
}

// send posts delivery i and records its answer, timed from due.
func (r *runner) send(ctx context.Context, i int64, due time.Time) {
	r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	tmpl, opened := r.labeled, false
	if n := int64(r.o.OpenedEvery); n > 0 && i%n == n-1 {
		tmpl, opened = r.opened, true
	}
	body := tmpl.render(firstNumber + int(i))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.o.URL, bytes.NewReader(body))
	if err != nil {
		r.record(opened, 0, 0, "bad request: "+err.Error())
		return
	}
	mac := hmac.New(sha256.New, r.o.Secret)
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/hookwise-loadtest")
	req.Header.Set("X-GitHub-Event", "issues")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-0000-4000-8000-%012x", r.run, i))
	req.Header.Set("X-GitHub-Hook-ID", "1")
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := r.client.Do(req)
	if err != nil {
		r.record(opened, 0, 0, errorClass(ctx, err))
		return
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		r.record(opened, 0, 0, errorClass(ctx, err))
		return
	}
	r.record(opened, resp.StatusCode, time.Since(due), "")
}

// errorClass names a failed request's cause without its details (URLs,
// addresses), so that a thousand of them count as one kind.
func errorClass(ctx context.Context, err error) string {
	var netErr net.Error
	switch {
	case ctx.Err() != nil:
		return "cut off at the end of the run"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the answer"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	return "transport error"
}

func (r *runner) record(opened bool, code int, latency time.Duration, failure string) {
	if code >= 200 && code <= 299 {
		r.ok.Add(1)
	} else {
		r.failed.Add(1)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if opened {
		r.res.Opened++
	}
	if failure != "" {
		r.res.Errors[failure]++
		if failure == "cut off at the end of the run" {
			r.res.CutOff++
		}
		return
	}
	r.res.Status[code]++
	r.res.Latency.Record(latency)
}

// report calls Progress every ProgressEvery until stop closes.
func (r *runner) report(start time.Time, stop <-chan struct{}) {
	if r.o.Progress == nil {
		return
	}
	tick := time.NewTicker(r.o.ProgressEvery)
	defer tick.Stop()
	var last int64
	lastAt := start
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			s := r.snapshot(now.Sub(start))
			s.Rate = float64(s.Done-last) / now.Sub(lastAt).Seconds()
			last, lastAt = s.Done, now
			r.o.Progress(s)
		}
	}
}

func (r *runner) snapshot(elapsed time.Duration) Snapshot {
	ok, failed := r.ok.Load(), r.failed.Load()
	return Snapshot{Elapsed: elapsed, Done: ok + failed, OK: ok, Failed: failed, InFlight: r.inFlight.Load()}
}

// Codes returns the status codes answered, in order.
func (r *Result) Codes() []int {
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	return codes
}
