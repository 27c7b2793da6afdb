// Package webhook is hookwise's front door: POST /webhook verifies a
// delivery's signature, checks its shape, and hands it to a Persister that
// stores it and enqueues its processing in one commit. It answers 202 only
// after that commit, and never decides what an event means.
//
// Before its signature is checked a request is a stranger's: its source
// may be refused (403), and its client (an IPv4 address or IPv6 /64, told
// through trusted proxies) gets a small share of the body memory and of
// the requests being read, and is answered 429 before its body is read
// for a while after failing too often. One address cannot crowd out
// GitHub's deliveries from the others.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/gjson"
	"golang.org/x/sync/semaphore"

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
	// reserves its room as it arrives, 64 KiB at a time (at once when its
	// Content-Length is smaller), so that a sender holds what it sent, not
	// what it announced. A request that finds no room within QueueWait is
	// answered 429. Default 256 MiB.
	BodyMemory int64
	// DurableCommits says a batch is durable when Persist returns
	// (PostgreSQL): its requests are answered at once, without a Sync.
	DurableCommits bool

	// ClientBodyShare is the part of BodyMemory one client may hold in
	// bodies whose signature is not checked yet; a request waits up to
	// QueueWait for room in it, then is answered 429. A body larger than
	// the share reads on once it holds all of it. Default 1/16; 1 turns
	// the share off.
	ClientBodyShare float64
	// ClientMaxUnverified caps one client's requests whose signature is not
	// checked yet; more wait up to QueueWait, before a byte of their body
	// is read, then are answered 429. Default 32; negative: no limit.
	ClientMaxUnverified int
	// PenaltyFailures failures within PenaltyWindow (a missing or wrong
	// signature, a body over 25 MB or not sent within 20 s) put a client in
	// the penalty box for PenaltyDuration: it is answered 429, with
	// Retry-After, before its body is read. Defaults 5, 1m and 5m;
	// negative PenaltyFailures: no penalty box.
	PenaltyFailures int
	PenaltyWindow   time.Duration
	PenaltyDuration time.Duration
	// MaxClients bounds the clients tracked at once. Default 65536.
	MaxClients int
	// TrustedProxies are the proxies whose X-Forwarded-For is believed:
	// behind them the client is the right-most address in it that is not
	// one of them. Otherwise the peer is the client.
	TrustedProxies []netip.Prefix
	// Allow, if set, answers requests from other sources 403 before their
	// body is read.
	Allow *Allowlist
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
	memory  *semaphore.Weighted
	clients *clients
	logs    *logLimiter
	// warnXFF warns once that X-Forwarded-For is ignored.
	warnXFF sync.Once
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
	opts = fairDefaults(opts)
	h := &Handler{
		opts:      opts,
		log:       opts.Logger,
		pending:   make(chan *pending, 4*opts.MaxBatch),
		committed: make(chan []*pending, 4*opts.Committers),
		done:      make(chan struct{}),
		memory:    semaphore.NewWeighted(opts.BodyMemory),
		clients:   newClients(opts),
		logs:      newLogLimiter(5, 20),
	}
	h.m = newMetrics(opts.Registerer, h.clients, opts.Allow)
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

// fairDefaults fills in the per-client limits left unset.
func fairDefaults(o Options) Options {
	if o.ClientBodyShare <= 0 || o.ClientBodyShare > 1 {
		o.ClientBodyShare = 1.0 / 16
	}
	if o.ClientMaxUnverified == 0 {
		o.ClientMaxUnverified = 32
	}
	if o.PenaltyFailures == 0 {
		o.PenaltyFailures = 5
	}
	if o.PenaltyWindow <= 0 {
		o.PenaltyWindow = time.Minute
	}
	if o.PenaltyDuration <= 0 {
		o.PenaltyDuration = 5 * time.Minute
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 1 << 16
	}
	return o
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
	v := &visit{addr: h.clientOf(r)}
	res, err := h.accept(w, r, v)
	if h.clients.leave(v, strikes(err), time.Now()) {
		h.logLimited(slog.LevelWarn, "webhook client in the penalty box", "client", v.addr.String(),
			"failures", h.opts.PenaltyFailures, "within", h.opts.PenaltyWindow.String(), "for", h.opts.PenaltyDuration.String())
	}
	outcome := res.outcome
	if err != nil {
		outcome = h.refuse(w, r, v, event, err)
	} else {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.code)
		fmt.Fprintf(w, `{"status":%q,"delivery":%q}`+"\n", res.outcome, res.guid)
	}
	h.m.deliveries.WithLabelValues(metricEvent(event), strings.ToLower(outcome)).Inc()
	h.m.latency.Observe(time.Since(start).Seconds())
}

// clientOf returns the client r comes from.
func (h *Handler) clientOf(r *http.Request) netip.Addr {
	if len(h.opts.TrustedProxies) == 0 && len(r.Header["X-Forwarded-For"]) > 0 {
		h.warnXFF.Do(func() {
			h.log.Warn("X-Forwarded-For is ignored: no trusted proxies are configured (webhook.trusted_proxies), "+
				"so every client behind a proxy counts as the proxy", "remote", r.RemoteAddr)
		})
	}
	return clientAddr(r, h.opts.TrustedProxies)
}

// refuse answers a rejected request, logs it (a few lines a second at
// most) and returns its metric outcome.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, v *visit, event string, err error) string {
	code := statusOf(err)
	outcome := http.StatusText(code)
	if code >= 500 {
		outcome = "unavailable"
	}
	var re *reqError
	if errors.As(err, &re) {
		if re.reason != "" {
			h.m.refused.WithLabelValues(re.reason).Inc()
		}
		if re.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((re.retryAfter+time.Second-1)/time.Second)))
		}
	}
	if !v.read {
		// The rest of the body is not wanted: the connection closes after
		// the answer, and what is still coming is waited for briefly.
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainGrace))
	}
	// Behind a proxy the peer is the proxy: forwarded_for is what it (or
	// whoever came before it) says; client is what of it is believed.
	h.logLimited(slog.LevelInfo, "webhook rejected", "status", code, "event", event,
		"delivery", r.Header.Get("X-GitHub-Delivery"), "client", v.addr.String(), "remote", r.RemoteAddr,
		"forwarded_for", r.Header.Get("X-Forwarded-For"), "err", err)
	msg := err.Error()
	if code >= 500 {
		msg = "store unavailable, try again"
	}
	http.Error(w, msg, code)
	return outcome
}

// logLimited logs a line unless too many were logged just now; the first
// line let through after some were held back says how many.
func (h *Handler) logLimited(level slog.Level, msg string, args ...any) {
	ok, suppressed := h.logs.allow(time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	h.log.Log(context.Background(), level, msg, args...)
}

// drainGrace is how long the rest of a refused body is read before its
// connection closes: enough for an honest client to finish sending and
// read the answer, too little for a slow one to matter.
const drainGrace = time.Second

type answer struct {
	code    int
	outcome string
	guid    string
}

// reqError is a rejection with the HTTP status it maps to.
type reqError struct {
	code int
	msg  string
	// strike counts the rejection against the client (see
	// Options.PenaltyFailures).
	strike bool
	// reason labels the 403s and 429s (hookwise_webhook_refused_total).
	reason     string
	retryAfter time.Duration
}

func (e *reqError) Error() string { return e.msg }

func reject(code int, format string, args ...any) error {
	return &reqError{code: code, msg: fmt.Sprintf(format, args...)}
}

// strike is reject for a failure that counts against the client.
func strike(code int, format string, args ...any) error {
	return &reqError{code: code, msg: fmt.Sprintf(format, args...), strike: true}
}

// strikes reports whether err counts against the client.
func strikes(err error) bool {
	var re *reqError
	return errors.As(err, &re) && re.strike
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

func (h *Handler) accept(w http.ResponseWriter, r *http.Request, v *visit) (answer, error) {
	mediaType, err := h.admit(r, v)
	if err != nil {
		return answer{}, err
	}
	room := &roomReader{h: h, ctx: r.Context(), v: v, r: http.MaxBytesReader(w, r.Body, MaxBody)}
	defer room.release()
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	body, err := h.readSigned(w, r, v, room, buf)
	if err != nil {
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
	payload, root, err := parsePayload(mediaType, body)
	if err != nil {
		return answer{}, err
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
	return h.persist(r.Context(), p)
}

// admit decides, before a byte of the body is read, whether the request
// may be read at all: its source, its client's standing, its content type,
// its announced length and the form of its signature. It returns the media
// type.
func (h *Handler) admit(r *http.Request, v *visit) (string, error) {
	if h.opts.Allow != nil && !h.opts.Allow.Allows(v.addr) {
		return "", &reqError{code: http.StatusForbidden, reason: "source", msg: "source address not allowed"}
	}
	if err := h.clients.admit(v, time.Now()); err != nil {
		return "", err
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded") {
		return "", reject(http.StatusUnsupportedMediaType, "content type must be application/json or application/x-www-form-urlencoded")
	}
	if r.ContentLength > MaxBody {
		return "", reject(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBody)
	}
	header := r.Header.Get("X-Hub-Signature-256")
	if header == "" {
		return "", strike(http.StatusUnauthorized, "missing X-Hub-Signature-256")
	}
	if _, ok := parseSignature(header); !ok {
		return "", strike(http.StatusUnauthorized, "signature does not match")
	}
	// A place among the client's unverified requests; waiting for one costs
	// a connection, not memory: no byte of the body is read yet.
	if slots := v.c.slots; slots != nil {
		if err := h.acquire(r.Context(), slots, 1, errBusy); err != nil {
			return "", err
		}
	}
	v.unverified = true
	return mediaType, nil
}

// readSigned reads the body, with its room reserved as it arrives, and
// checks its signature. A verified body no longer counts against its
// client's share.
func (h *Handler) readSigned(w http.ResponseWriter, r *http.Request, v *visit, room *roomReader, buf *bytes.Buffer) ([]byte, error) {
	// GitHub sends a delivery within its 10 s timeout: a body still coming
	// after bodyTimeout is a slow sender holding memory.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	if r.ContentLength > 0 && r.ContentLength <= roomChunk {
		// The usual delivery: its room at once, and one more read than
		// announced, so that reading the end does not grow (and copy) the
		// buffer.
		if err := room.reserve(r.ContentLength + bytes.MinRead); err != nil {
			return nil, err
		}
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	body, err := readBody(room, buf)
	if err != nil {
		return nil, err
	}
	v.read = true
	if !Verify(h.opts.Secrets, body, r.Header.Get("X-Hub-Signature-256")) {
		return nil, strike(http.StatusUnauthorized, "signature does not match")
	}
	h.clients.vouch(v)
	room.vouch()
	return body, nil
}

// parsePayload takes the JSON payload out of body and checks it: nesting
// within MaxDepth (before the validator, which recurses), valid JSON, an
// object at the top.
func parsePayload(mediaType string, body []byte) ([]byte, gjson.Result, error) {
	payload := body
	if mediaType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			return nil, gjson.Result{}, reject(http.StatusBadRequest, "form body without a payload field")
		}
		payload = []byte(form.Get("payload"))
	}
	if !nestedWithin(payload, MaxDepth) {
		return nil, gjson.Result{}, reject(http.StatusBadRequest, "JSON payload nested deeper than %d levels", MaxDepth)
	}
	// One validating pass and one extracting pass over the payload; decoding
	// it with encoding/json costs several times more on the hot path.
	if !gjson.ValidBytes(payload) {
		return nil, gjson.Result{}, reject(http.StatusBadRequest, "malformed JSON payload")
	}
	// Read in place: payload is never written to after this, and the few
	// strings kept from it are cloned (gjson.ParseBytes copies it whole).
	root := gjson.Parse(unsafe.String(unsafe.SliceData(payload), len(payload)))
	if !root.IsObject() {
		return nil, gjson.Result{}, reject(http.StatusBadRequest, "malformed JSON payload")
	}
	return payload, root, nil
}

// persist hands p to the committers and waits for its commit.
func (h *Handler) persist(ctx context.Context, p *pending) (answer, error) {
	if err := h.enqueue(ctx, p); err != nil {
		return answer{}, err
	}
	<-p.ready
	if p.err != nil {
		return answer{}, fmt.Errorf("%w: %v", errUnavailable, p.err)
	}
	if !p.inserted {
		return answer{code: http.StatusAccepted, outcome: "duplicate", guid: p.d.GUID}, nil
	}
	return answer{code: http.StatusAccepted, outcome: "accepted", guid: p.d.GUID}, nil
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

// acquire waits up to QueueWait for n bytes of sem, else returns refused.
func (h *Handler) acquire(ctx context.Context, sem *semaphore.Weighted, n int64, refused error) error {
	if sem.TryAcquire(n) {
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, h.opts.QueueWait)
	defer cancel()
	if err := sem.Acquire(wait, n); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", errUnavailable, ctx.Err())
		}
		return refused
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
		return &reqError{code: http.StatusTooManyRequests, reason: "queue", msg: "too many deliveries waiting to be stored; retry later"}
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
		return nil, strike(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBody)
	case errors.As(err, &refused), errors.Is(err, errUnavailable):
		return nil, err // no room for it
	}
	return nil, strike(http.StatusBadRequest, "read body: %v", err)
}

// bodyTimeout bounds the reading of a request's body.
const bodyTimeout = 20 * time.Second

// roomChunk is how much room a body reserves at a time beyond what it has
// read: a delivery up to it gets its room at once, a larger one as it
// arrives.
const roomChunk = 64 << 10

// Refusals for want of room, global and per client.
var (
	errNoRoom = &reqError{code: http.StatusTooManyRequests, reason: "memory", retryAfter: time.Second,
		msg: "too many request bodies being read at once; retry later"}
	errNoShare = &reqError{code: http.StatusTooManyRequests, reason: "client_memory", retryAfter: time.Second,
		msg: "this address's unverified bodies hold its share of memory; retry later"}
)

// roomReader reads a body while reserving room for it a chunk at a time,
// just ahead of the bytes read: under Options.BodyMemory, and, until its
// signature is verified, under its client's share. A sender that announces
// 25 MB and sends slowly holds what it sent, not what it announced.
type roomReader struct {
	h      *Handler
	ctx    context.Context
	v      *visit
	r      io.Reader
	held   int64 // room reserved under BodyMemory
	shared int64 // room reserved under the client's share
	read   int64 // bytes read
}

func (rr *roomReader) reserve(n int64) error {
	n = min(n, rr.h.opts.BodyMemory-rr.held) // a body larger than the budget has all of it
	if n <= 0 {
		return nil
	}
	if share := rr.share(); share != nil {
		// Likewise a body larger than the share, once it holds all of it.
		if m := min(n, rr.h.clients.share-rr.shared); m > 0 {
			if err := rr.h.acquire(rr.ctx, share, m, errNoShare); err != nil {
				return err
			}
			rr.shared += m
		}
	}
	if err := rr.h.acquire(rr.ctx, rr.h.memory, n, errNoRoom); err != nil {
		return err
	}
	rr.held += n
	return nil
}

// share is the client's share the body counts against, or nil.
func (rr *roomReader) share() *semaphore.Weighted {
	if rr.v.c == nil || !rr.v.unverified {
		return nil
	}
	return rr.v.c.share
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

// vouch gives the client's share back once the body is verified: GitHub's
// own deliveries are limited by BodyMemory only.
func (rr *roomReader) vouch() {
	if rr.shared > 0 {
		rr.v.c.share.Release(rr.shared)
		rr.shared = 0
	}
}

// release gives the body's room back.
func (rr *roomReader) release() {
	rr.vouch()
	if rr.held > 0 {
		rr.h.memory.Release(rr.held)
	}
}

// Verify checks a X-Hub-Signature-256 header value against body with each
// secret, in constant time per secret.
func Verify(secrets [][]byte, body []byte, header string) bool {
	sig, ok := parseSignature(header)
	if !ok {
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

// parseSignature decodes a X-Hub-Signature-256 value ("sha256=" and 64 hex
// digits).
func parseSignature(header string) ([]byte, bool) {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, false
	}
	sig, err := hex.DecodeString(hexSig)
	return sig, err == nil
}

// Sign returns the X-Hub-Signature-256 value GitHub sends for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
