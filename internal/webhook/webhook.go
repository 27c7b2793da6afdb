// Package webhook is hookwise's front door: POST /webhook verifies a
// delivery's signature, checks its shape, and hands it to a Persister that
// stores it and enqueues its processing in one commit. It answers 202 only
// after that commit, and never decides what an event means.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"

	"github.com/hookwise/hookwise/internal/store"
)

// MaxBody is the largest payload GitHub sends (25 MB); larger bodies are 413.
const MaxBody = 25 << 20

// Persister stores deliveries. Persist commits a batch in one transaction
// (inserted[i] is false where delivery i was already stored); Sync returns
// once everything committed so far is on disk. A delivery is answered only
// after both, and the next batch commits while the last one syncs.
type Persister interface {
	Persist(ctx context.Context, batch []store.Delivery) (inserted []bool, err error)
	Sync(ctx context.Context) error
}

// Options configure a Handler.
type Options struct {
	// Secrets are the webhook secrets; a signature made with any of them is
	// accepted, so a secret can be rotated without dropping deliveries.
	Secrets   [][]byte
	Persister Persister
	Logger    *slog.Logger
	// Registerer receives the ingest metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Committers is how many batches may commit at once (1 for SQLite, whose
	// writes are serial anyway). Default 1.
	Committers int
	// MaxBatch caps the deliveries committed together. Default 256.
	MaxBatch int
	// QueueWait is how long a request may wait for a place in the commit
	// queue before it is answered 503. Default 5s.
	QueueWait time.Duration
	// Linger is how long a commit waits for more deliveries to join it.
	Linger time.Duration
	// BodyMemory caps the bytes of request bodies held at once. A body
	// reserves its room before it is read, up to 1 MiB at once (its
	// Content-Length when that is smaller) and more as it arrives, so that
	// senders without a valid signature cannot make the service hold 25 MB
	// each by announcing it. A request that finds no room within QueueWait
	// is answered 429. Default 256 MiB.
	BodyMemory int64
	// DurableCommits says a batch is durable when Persist returns
	// (PostgreSQL): its requests are answered at once, without a Sync.
	DurableCommits bool
}

// Handler serves POST /webhook.
type Handler struct {
	// mu guards sends on pending against Close closing it.
	mu      sync.RWMutex
	closed  bool
	opts    Options
	log     *slog.Logger
	pending chan *pending
	// committed carries committed batches to the sync loop.
	committed chan []*pending
	done      chan struct{}
	m         metrics
	// memory is the room left under Options.BodyMemory.
	memory *semaphore.Weighted
}

type pending struct {
	d        store.Delivery
	inserted bool
	err      error
	ready    chan struct{}
}

// New starts a Handler and its committers; Close stops them.
func New(opts Options) *Handler {
	if opts.Committers <= 0 {
		opts.Committers = 1
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Linger <= 0 {
		opts.Linger = 300 * time.Microsecond
	}
	if opts.QueueWait <= 0 {
		opts.QueueWait = 5 * time.Second
	}
	if opts.BodyMemory <= 0 {
		opts.BodyMemory = 256 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		opts:      opts,
		log:       opts.Logger,
		pending:   make(chan *pending, 4*opts.MaxBatch),
		committed: make(chan []*pending, 4*opts.Committers),
		done:      make(chan struct{}),
		m:         newMetrics(opts.Registerer),
		memory:    semaphore.NewWeighted(opts.BodyMemory),
	}
	finished := make(chan struct{}, opts.Committers)
	for range opts.Committers {
		go func() {
			h.commitLoop()
			finished <- struct{}{}
		}()
	}
	go func() {
		for range opts.Committers {
			<-finished
		}
		close(h.committed)
	}()
	go func() {
		h.syncLoop()
		close(h.done)
	}()
	return h
}

// Close stops the committers after the deliveries already handed to them are
// committed. Call it only after the HTTP server has stopped sending requests.
func (h *Handler) Close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.pending)
	}
	h.mu.Unlock()
	<-h.done
}

// commitLoop commits whatever has queued up while the previous batch was
// committing: under load batches grow by themselves, idle it commits one
// delivery at once, and no request waits on a timer.
func (h *Handler) commitLoop() {
	for first := range h.pending {
		batch := []*pending{first}
		linger := time.NewTimer(h.opts.Linger)
	drain:
		for len(batch) < h.opts.MaxBatch {
			select {
			case p, ok := <-h.pending:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			case <-linger.C:
				break drain
			}
		}
		linger.Stop()
		h.commit(batch)
	}
}

func (h *Handler) commit(batch []*pending) {
	ds := make([]store.Delivery, len(batch))
	for i, p := range batch {
		ds[i] = p.d
	}
	// Not the request's context: one sender hanging up must not fail the
	// batch that carries everyone else's delivery.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	inserted, err := h.opts.Persister.Persist(ctx, ds)
	h.m.batch.Observe(float64(len(batch)))
	if err != nil {
		h.log.Error("persist deliveries", "batch", len(batch), "err", err)
		release(batch, err)
		return
	}
	for i, p := range batch {
		p.inserted = inserted[i]
	}
	if h.opts.DurableCommits {
		release(batch, nil)
		return
	}
	h.committed <- batch
}

// syncLoop answers committed batches once they are on disk, with one Sync
// for all the batches that committed while the previous Sync ran.
func (h *Handler) syncLoop() {
	for batch := range h.committed {
		batches := [][]*pending{batch}
	more:
		for {
			select {
			case b, ok := <-h.committed:
				if !ok {
					break more
				}
				batches = append(batches, b)
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := h.opts.Persister.Sync(ctx)
		cancel()
		if err != nil {
			h.log.Error("sync deliveries", "batches", len(batches), "err", err)
		}
		for _, b := range batches {
			release(b, err)
		}
	}
}

// release answers every request of a batch.
func release(batch []*pending, err error) {
	for _, p := range batch {
		p.err = err
		close(p.ready)
	}
}

// ServeHTTP verifies, validates and persists one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event := r.Header.Get("X-GitHub-Event")
	res, err := h.accept(w, r)
	outcome := res.outcome
	if err != nil {
		code := statusOf(err)
		outcome = http.StatusText(code)
		if code >= 500 {
			outcome = "unavailable"
		}
		// Behind a proxy the peer is the proxy: forwarded_for is what it
		// (or whoever came before it) says, unverified.
		h.log.Info("webhook rejected", "status", code, "event", event,
			"delivery", r.Header.Get("X-GitHub-Delivery"), "remote", r.RemoteAddr,
			"forwarded_for", r.Header.Get("X-Forwarded-For"), "err", err)
		msg := err.Error()
		if code >= 500 {
			msg = "store unavailable, try again"
		}
		http.Error(w, msg, code)
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.code)
		fmt.Fprintf(w, `{"status":%q,"delivery":%q}`+"\n", res.outcome, res.guid)
	}
	h.m.deliveries.WithLabelValues(metricEvent(event), strings.ToLower(outcome)).Inc()
	h.m.latency.Observe(time.Since(start).Seconds())
}

type answer struct {
	code    int
	outcome string
	guid    string
}

// reqError is a rejection with the HTTP status it maps to.
type reqError struct {
	code int
	msg  string
}

func (e *reqError) Error() string { return e.msg }

func reject(code int, format string, args ...any) error {
	return &reqError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errUnavailable wraps failures of the store: the answer is 503, never 2xx.
var errUnavailable = errors.New("store unavailable")

// statusOf is the one place an error becomes an HTTP status.
func statusOf(err error) int {
	var re *reqError
	switch {
	case errors.As(err, &re):
		return re.code
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func (h *Handler) accept(w http.ResponseWriter, r *http.Request) (answer, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded") {
		return answer{}, reject(http.StatusUnsupportedMediaType, "content type must be application/json or application/x-www-form-urlencoded")
	}
	if r.ContentLength > MaxBody {
		return answer{}, reject(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBody)
	}
	// GitHub sends a delivery within its 10 s timeout: a body still coming
	// after bodyTimeout is a slow sender holding memory.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	room := &roomReader{h: h, ctx: r.Context(), r: http.MaxBytesReader(w, r.Body, MaxBody)}
	defer room.release()
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	if r.ContentLength > 0 && r.ContentLength <= roomChunk {
		// The usual delivery: its room at once, and one more read than
		// announced, so that reading the end does not grow (and copy) the
		// buffer.
		if err := room.reserve(r.ContentLength + bytes.MinRead); err != nil {
			return answer{}, err
		}
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	body, err := readBody(room, buf)
	if err != nil {
		return answer{}, err
	}
	if err := h.verify(body, r.Header.Get("X-Hub-Signature-256")); err != nil {
		return answer{}, err
	}
	event := r.Header.Get("X-GitHub-Event")
	guid := r.Header.Get("X-GitHub-Delivery")
	if event == "" || guid == "" {
		return answer{}, reject(http.StatusBadRequest, "missing X-GitHub-Event or X-GitHub-Delivery header")
	}
	target := r.Header.Get("X-GitHub-Hook-Installation-Target-Type")
	hookID := r.Header.Get("X-GitHub-Hook-ID")
	if len(guid) > 100 || len(event) > 100 || len(target) > 100 || len(hookID) > 100 {
		return answer{}, reject(http.StatusBadRequest, "X-GitHub-Event, X-GitHub-Delivery, X-GitHub-Hook-ID or X-GitHub-Hook-Installation-Target-Type header too long")
	}
	payload := body
	if mediaType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			return answer{}, reject(http.StatusBadRequest, "form body without a payload field")
		}
		payload = []byte(form.Get("payload"))
	}
	// One validating pass and one extracting pass over the payload; decoding
	// it with encoding/json costs several times more on the hot path.
	if !gjson.ValidBytes(payload) {
		return answer{}, reject(http.StatusBadRequest, "malformed JSON payload")
	}
	// Read in place: payload is never written to after this, and the few
	// strings kept from it are cloned (gjson.ParseBytes copies it whole).
	root := gjson.Parse(unsafe.String(unsafe.SliceData(payload), len(payload)))
	if !root.IsObject() {
		return answer{}, reject(http.StatusBadRequest, "malformed JSON payload")
	}
	if event == "ping" {
		return answer{code: http.StatusOK, outcome: "pong", guid: guid}, nil
	}
	p := &pending{
		d: store.Delivery{
			HookID:     hookID,
			HookTarget: target,
			GUID:       guid,
			Event:      event,
			Payload:    payload,
			ReceivedAt: time.Now(),
		},
		ready: make(chan struct{}),
	}
	readHead(root, &p.d)
	if field := unstorable(&p.d); field != "" {
		return answer{}, reject(http.StatusBadRequest, "%s is not UTF-8 text without NUL bytes", field)
	}
	p.d.Pack() // here, concurrently, rather than in the batch's commit
	if err := h.enqueue(r.Context(), p); err != nil {
		return answer{}, err
	}
	<-p.ready
	if p.err != nil {
		return answer{}, fmt.Errorf("%w: %v", errUnavailable, p.err)
	}
	if !p.inserted {
		return answer{code: http.StatusAccepted, outcome: "duplicate", guid: guid}, nil
	}
	return answer{code: http.StatusAccepted, outcome: "accepted", guid: guid}, nil
}

// unstorable names the first field of d that PostgreSQL's text type cannot
// hold (invalid UTF-8, or a NUL byte), or returns "". Such a row would fail
// the whole batch it is committed with, on every retry.
func unstorable(d *store.Delivery) string {
	for _, f := range [...]struct{ name, value string }{
		{"X-GitHub-Delivery header", d.GUID}, {"X-GitHub-Event header", d.Event}, {"X-GitHub-Hook-ID header", d.HookID},
		{"X-GitHub-Hook-Installation-Target-Type header", d.HookTarget},
		{"action", d.Action}, {"repository.full_name", d.Repo}, {"sender.login", d.Sender},
	} {
		if !utf8.ValidString(f.value) || strings.IndexByte(f.value, 0) >= 0 {
			return f.name
		}
	}
	return ""
}

// readHead fills in the fields of d that are read from the payload's top
// level, in one pass that skips over the large values (the issue, the pull
// request) once instead of once per field.
func readHead(root gjson.Result, d *store.Delivery) {
	root.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "action":
			d.Action = strings.Clone(value.String())
		case "repository":
			d.Repo = strings.Clone(value.Get("full_name").String())
		case "installation":
			d.InstallationID = value.Get("id").Int()
		case "sender":
			d.Sender = strings.Clone(value.Get("login").String())
		}
		return true
	})
}

// reserveMemory waits up to QueueWait for n bytes of room for a body.
func (h *Handler) reserveMemory(ctx context.Context, n int64) error {
	if h.memory.TryAcquire(n) {
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, h.opts.QueueWait)
	defer cancel()
	if err := h.memory.Acquire(wait, n); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", errUnavailable, ctx.Err())
		}
		return reject(http.StatusTooManyRequests, "too many request bodies being read at once; retry later")
	}
	return nil
}

func (h *Handler) enqueue(ctx context.Context, p *pending) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return fmt.Errorf("%w: shutting down", errUnavailable)
	}
	select {
	case h.pending <- p:
		return nil
	default:
	}
	t := time.NewTimer(h.opts.QueueWait)
	defer t.Stop()
	select {
	case h.pending <- p:
		return nil
	case <-t.C:
		// The store is up but slower than the senders: ask them to back off.
		return reject(http.StatusTooManyRequests, "too many deliveries waiting to be stored; retry later")
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", errUnavailable, ctx.Err())
	}
}

// bodies recycles request buffers: a delivery's bytes are copied into the
// database by its commit, and the request answered after that.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBody(buf *bytes.Buffer) {
	if buf.Cap() <= 1<<20 { // keep the usual sizes, let the rare huge ones go
		buf.Reset()
		bodies.Put(buf)
	}
}

func readBody(body io.Reader, buf *bytes.Buffer) ([]byte, error) {
	_, err := buf.ReadFrom(body)
	var tooBig *http.MaxBytesError
	var refused *reqError
	switch {
	case err == nil:
		return buf.Bytes(), nil
	case errors.As(err, &tooBig):
		return nil, reject(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBody)
	case errors.As(err, &refused), errors.Is(err, errUnavailable):
		return nil, err // no room for it
	}
	return nil, reject(http.StatusBadRequest, "read body: %v", err)
}

// bodyTimeout bounds the reading of a request's body.
const bodyTimeout = 20 * time.Second

// roomChunk is how much room a body reserves at a time beyond what it has:
// a delivery up to it gets its room at once, a larger one as it arrives.
const roomChunk = 1 << 20

// roomReader reads a body while reserving room for it under
// Options.BodyMemory a chunk at a time, ahead of the bytes read: a sender
// that announces 25 MB and sends slowly holds what it sent, not what it
// announced.
type roomReader struct {
	h    *Handler
	ctx  context.Context
	r    io.Reader
	held int64 // room reserved
	read int64 // bytes read
}

func (rr *roomReader) reserve(n int64) error {
	n = min(n, rr.h.opts.BodyMemory-rr.held) // a body larger than the budget has all of it
	if n <= 0 {
		return nil
	}
	if err := rr.h.reserveMemory(rr.ctx, n); err != nil {
		return err
	}
	rr.held += n
	return nil
}

func (rr *roomReader) Read(p []byte) (int, error) {
	if rr.read >= rr.held {
		if err := rr.reserve(roomChunk); err != nil {
			return 0, err
		}
	}
	// Never more than the room held; a body that holds the whole budget
	// (larger than it) reads on.
	if free := rr.held - rr.read; free > 0 && int64(len(p)) > free {
		p = p[:free]
	}
	n, err := rr.r.Read(p)
	rr.read += int64(n)
	return n, err
}

// release gives the body's room back.
func (rr *roomReader) release() {
	if rr.held > 0 {
		rr.h.memory.Release(rr.held)
	}
}

// Verify checks a X-Hub-Signature-256 header value against body with each
// secret, in constant time per secret.
func Verify(secrets [][]byte, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil || len(sig) != sha256.Size {
		return false
	}
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), sig) {
			return true
		}
	}
	return false
}

// Sign returns the X-Hub-Signature-256 value GitHub sends for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (h *Handler) verify(body []byte, header string) error {
	if header == "" {
		return reject(http.StatusUnauthorized, "missing X-Hub-Signature-256")
	}
	if !Verify(h.opts.Secrets, body, header) {
		return reject(http.StatusUnauthorized, "signature does not match")
	}
	return nil
}
