package fake

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// anthCacheTTL is how long a prompt-cache entry lives after its last use,
// like the API's default ephemeral cache.
const anthCacheTTL = 5 * time.Minute

// Default per-minute rate limits of the fake, reported in the
// anthropic-ratelimit-* headers and enforced with 429s.
const (
	anthDefaultRequestsPerMinute = 1000
	anthDefaultTokensPerMinute   = 1_000_000
)

// anthDefaultSeed seeds the fault draws when AnthropicOptions.Seed is 0, so
// that a run without a seed is still repeatable.
const anthDefaultSeed = 0x5EED_A17E_0000_0001

// Anthropic is an in-process fake of Anthropic's Messages API
// (POST /v1/messages) and Message Batches API (/v1/messages/batches, see
// anthropic_batches.go). It speaks the real wire format, so the official SDK
// and hookwise's claude adapter work against it unchanged. It models prompt
// caching of a system prompt marked with cache_control, including the
// model's minimum cacheable length, so a test that expects cache reads
// needs a system prompt at least that long (1024 tokens, 4096 chars, for
// most models). It is safe for concurrent use.
type Anthropic struct {
	opts AnthropicOptions

	mu          sync.Mutex
	apiKey      string
	calls       int
	requests    []AnthropicRequest
	failures    []anthFailure
	hangUps     int                       // calls still to be answered by closing the connection (HangUpNext)
	cache       map[[32]byte]time.Time    // system prompt hash → last use
	reqBucket   anthBucket                // requests per minute
	tokBucket   anthBucket                // tokens per minute
	rng         *mrand.Rand               // fault draws
	answers     map[int]int               // status → answers sent
	usage       map[string]AnthropicUsage // model → usage reported in 200 answers and succeeded batch results
	inFlight    int
	maxInFlight int

	// bmu guards the batches; it is taken before mu, never after, as
	// answering a batch's requests takes mu.
	bmu           sync.Mutex
	batches       map[string]*anthBatch
	batchOrder    []string                  // batch ids, oldest first
	batchUsage    map[string]AnthropicUsage // model → usage of succeeded batch results
	batchFailures []anthBatchFailure
	batchHangUps  int // batch creations still to be answered by closing the connection
}

// AnthropicOptions configures an Anthropic fake.
type AnthropicOptions struct {
	APIKey  string
	Latency time.Duration // added to every call
	// Respond builds the structured answer. The value is JSON-encoded into
	// the answer's text block, except a string, []byte or json.RawMessage,
	// which is sent verbatim (so a test can answer with prose). An error
	// becomes a 500 api_error. Default: AnthropicSchemaResponder.
	Respond func(req AnthropicRequest) (any, error)
	// RequestsPerMinute and TokensPerMinute are the rate limits, enforced
	// as token buckets the way the API documents them: each bucket holds
	// up to its per-minute limit and refills continuously at limit/60 per
	// second, rather than resetting at fixed intervals. A call that finds
	// less than one request, or fewer tokens than its input, gets a 429
	// rate_limit_error and consumes nothing. An admitted call takes one
	// request and its input tokens (cache reads and writes included) at
	// once, and its output tokens when it answers; output may drive the
	// token bucket below zero, delaying later calls until it refills.
	// Zero means 1000 requests and 1,000,000 tokens.
	RequestsPerMinute, TokensPerMinute int64
	Now                                func() time.Time // default time.Now; for cache expiry and the rate-limit buckets
	// Faults are random failures: each call that passes authentication
	// draws once, and the first fault whose cumulative probability covers
	// the draw answers it instead of the model. A pending FailNext failure
	// takes precedence (the draw is then spent unused). A fault is answered
	// before the call is admitted, so it consumes no rate-limit capacity:
	// the API does not charge for requests it turns away. Probabilities
	// must be in [0, 1] and sum to at most 1; NewAnthropic panics otherwise.
	Faults []AnthropicFault
	// Seed seeds the fault draws (math/rand/v2 PCG); 0 picks a fixed
	// default, so runs repeat either way.
	Seed uint64
	// BatchDelay is how long a message batch stays in_progress after it is
	// created, by Now; its requests are answered when it is first looked
	// at after that (its status or its results). 0 means 300ms; a negative
	// delay leaves batches in progress until EndBatches (or until they
	// expire, 24 hours after creation, with every request expired).
	BatchDelay time.Duration
}

// AnthropicFault is one kind of random failure of the fake.
type AnthropicFault struct {
	Probability float64 // chance that a call gets this fault
	Status      int     // HTTP status, 400–599; 529 is the API's "overloaded"
	// Type is the error type in the body; "" picks the type the API uses
	// for Status (429 rate_limit_error, 529 overloaded_error, 500
	// api_error, ...).
	Type string
	// RetryAfter is sent in retry-after (whole seconds, rounded up) when
	// positive. A 429 always carries retry-after, 1s when this is zero,
	// along with rate-limit headers showing the fake's real buckets, which
	// are not empty: what a client sees when it hits a limit the headers do
	// not report, such as one of its organisation's.
	RetryAfter time.Duration
}

// AnthropicUsage is the usage the fake reported in its 200 answers to one
// model (and in its succeeded batch results), summed field by field over
// those answers, so that a test can check a cost ledger against what the
// API would have billed.
type AnthropicUsage struct {
	Calls                    int64 // 200 answers and succeeded batch results, including those cut at max_tokens
	InputTokens              int64 // usage.input_tokens
	OutputTokens             int64 // usage.output_tokens
	CacheCreationInputTokens int64 // usage.cache_creation_input_tokens
	CacheReadInputTokens     int64 // usage.cache_read_input_tokens
}

// AnthropicRequest is a Messages API request as the fake decoded it.
type AnthropicRequest struct {
	Model     string
	System    string         // system text (blocks joined with "\n")
	Prompt    string         // text of all messages, joined with "\n\n"
	Schema    map[string]any // output_config.format.schema; nil without structured output
	MaxTokens int
	Batch     bool // sent in a message batch rather than to /v1/messages
}

type anthFailure struct {
	status     int
	errType    string
	retryAfter time.Duration
}

// NewAnthropic returns a fake Messages API.
func NewAnthropic(opts AnthropicOptions) *Anthropic {
	if opts.Respond == nil {
		opts.Respond = AnthropicSchemaResponder
	}
	if opts.RequestsPerMinute <= 0 {
		opts.RequestsPerMinute = anthDefaultRequestsPerMinute
	}
	if opts.TokensPerMinute <= 0 {
		opts.TokensPerMinute = anthDefaultTokensPerMinute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BatchDelay == 0 {
		opts.BatchDelay = anthDefaultBatchDelay
	}
	sum := 0.0
	faults := make([]AnthropicFault, len(opts.Faults))
	for i, f := range opts.Faults {
		if !(f.Probability >= 0 && f.Probability <= 1) {
			panic(fmt.Sprintf("fake: AnthropicOptions.Faults[%d].Probability = %v, want in [0, 1]", i, f.Probability))
		}
		if f.Status < 400 || f.Status > 599 {
			panic(fmt.Sprintf("fake: AnthropicOptions.Faults[%d].Status = %d, want 400–599", i, f.Status))
		}
		if f.Type == "" {
			f.Type = anthTypeForStatus(f.Status)
		}
		if f.Status == http.StatusTooManyRequests && f.RetryAfter <= 0 {
			f.RetryAfter = time.Second
		}
		sum += f.Probability
		faults[i] = f
	}
	if sum > 1+1e-9 {
		panic(fmt.Sprintf("fake: AnthropicOptions.Faults probabilities sum to %v, want at most 1", sum))
	}
	opts.Faults = faults
	seed := opts.Seed
	if seed == 0 {
		seed = anthDefaultSeed
	}
	return &Anthropic{
		opts:      opts,
		apiKey:    opts.APIKey,
		cache:     map[[32]byte]time.Time{},
		reqBucket: newAnthBucket(opts.RequestsPerMinute),
		tokBucket: newAnthBucket(opts.TokensPerMinute),
		rng:       mrand.New(mrand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		answers:   map[int]int{},
		usage:     map[string]AnthropicUsage{},

		batches:    map[string]*anthBatch{},
		batchUsage: map[string]AnthropicUsage{},
	}
}

// Calls returns the number of successful message calls, batched requests
// that succeeded included.
func (a *Anthropic) Calls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// Requests returns the requests of the successful calls, oldest first
// (batched requests included, marked Batch).
func (a *Anthropic) Requests() []AnthropicRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]AnthropicRequest(nil), a.requests...)
}

// Answers returns how many answers the fake has sent, by HTTP status:
// successes, injected and random faults, 429s from the rate-limit buckets
// and every other error.
func (a *Anthropic) Answers() map[int]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.answers)
}

// Usage returns, by model id as requested, the usage the fake reported in
// every 200 answer it has sent and every succeeded batch result (answers
// cut at max_tokens included): the sums of each usage field of the
// messages, and how many. Failed calls and batch requests are absent, as
// the API does not bill them. BatchUsage is the part that came through
// batches, which the API bills at half price.
func (a *Anthropic) Usage() map[string]AnthropicUsage {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.usage)
}

// MaxInFlight returns the most requests the fake has served at once.
func (a *Anthropic) MaxInFlight() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxInFlight
}

// FailNext makes the next n calls that pass authentication fail with
// status and the API's error body of type errType ("" picks the type the
// API uses for status), with a retry-after header (whole seconds, rounded
// up) when retryAfter > 0.
func (a *Anthropic) FailNext(status int, errType string, n int, retryAfter time.Duration) {
	if errType == "" {
		errType = anthTypeForStatus(status)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for range n {
		a.failures = append(a.failures, anthFailure{status: status, errType: errType, retryAfter: retryAfter})
	}
}

// HangUpNext makes the next n calls that reach the model run, and count in
// Usage as billed, but get no answer: the fake closes the connection
// instead of writing the message, as when a proxy or the network drops a
// response.
func (a *Anthropic) HangUpNext(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hangUps += n
}

// SetAPIKey changes the key the fake accepts.
func (a *Anthropic) SetAPIKey(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apiKey = key
}

// anthWireRequest is the part of a Messages API request body the fake reads.
type anthWireRequest struct {
	Model        string            `json:"model"`
	MaxTokens    *int              `json:"max_tokens"`
	System       json.RawMessage   `json:"system"`
	Messages     []anthWireMessage `json:"messages"`
	OutputConfig *struct {
		Format *struct {
			Type   string         `json:"type"`
			Schema map[string]any `json:"schema"`
		} `json:"format"`
	} `json:"output_config"`
}

type anthWireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthWireBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	CacheControl json.RawMessage `json:"cache_control"`
}

// anthText decodes content that is either a string or a list of blocks,
// returning its text and whether any block asks for prompt caching.
func anthText(raw json.RawMessage) (text string, cached bool, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, false, nil
	}
	var blocks []anthWireBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", false, errors.New("content must be a string or a list of content blocks")
	}
	var parts []string
	for _, b := range blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
		if len(b.CacheControl) > 0 && string(b.CacheControl) != "null" {
			cached = true
		}
	}
	return strings.Join(parts, "\n"), cached, nil
}

// ServeHTTP serves POST /v1/messages and the Message Batches API
// (serveBatches); every other route is a 404. Every answer to a message
// call that passes authentication carries the rate-limit headers; answers
// before that (401, unknown route or method) do not, as the API cannot tell
// whose limits to report.
func (a *Anthropic) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &anthAnswerWriter{ResponseWriter: rw}
	defer a.count(w)
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/messages/batches"); ok && (rest == "" || rest[0] == '/') {
		a.serveBatches(w, r, rest)
		return
	}
	if r.URL.Path != "/v1/messages" {
		anthWriteError(w, http.StatusNotFound, "not_found_error", "Not found", 0)
		return
	}
	if r.Method != http.MethodPost {
		anthWriteError(w, http.StatusMethodNotAllowed, "invalid_request_error", "Method not allowed", 0)
		return
	}

	a.mu.Lock()
	a.inFlight++
	a.maxInFlight = max(a.maxInFlight, a.inFlight)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inFlight--
		a.mu.Unlock()
	}()

	if !a.checkRequest(w, r, a.writeError) {
		return
	}

	var wire anthWireRequest
	if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 32<<20)).Decode(&wire); err != nil {
		a.writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+err.Error(), 0)
		return
	}
	req, cacheable, problem := anthDecode(wire)
	if problem != "" {
		a.writeError(w, http.StatusBadRequest, "invalid_request_error", problem, 0)
		return
	}

	systemTokens := int64(len(req.System) / 4)
	inputTokens := int64(len(req.Prompt) / 4)

	// Admit the call, or turn it away without charging it.
	a.mu.Lock()
	now := a.opts.Now()
	a.reqBucket.refill(now)
	a.tokBucket.refill(now)
	if wait := max(a.reqBucket.wait(1), a.tokBucket.wait(float64(systemTokens+inputTokens))); wait > 0 {
		a.writeLimitHeaders(w.Header(), now)
		a.mu.Unlock()
		anthWriteError(w, http.StatusTooManyRequests, "rate_limit_error", anthMessageForType("rate_limit_error"), max(wait, time.Second))
		return
	}
	a.reqBucket.take(1)
	a.tokBucket.take(float64(systemTokens + inputTokens))
	usage := a.cacheLocked(req, cacheable, now)
	a.mu.Unlock()

	body, usage, err := a.message(req, usage)
	if err != nil {
		a.writeError(w, http.StatusInternalServerError, "api_error", "Internal server error: "+err.Error(), 0)
		return
	}
	a.mu.Lock()
	now = a.opts.Now()
	a.tokBucket.refill(now)
	a.tokBucket.take(float64(usage.OutputTokens))
	a.writeLimitHeaders(w.Header(), now)
	hangUp := a.hangUps > 0
	if hangUp {
		a.hangUps--
	}
	a.mu.Unlock()
	if hangUp {
		if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	anthWriteJSON(w, http.StatusOK, body)
}

// wait holds a call for Latency, and reports false if its client gave up
// meanwhile.
func (a *Anthropic) wait(r *http.Request) bool {
	if a.opts.Latency <= 0 {
		return true
	}
	t := time.NewTimer(a.opts.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// injected returns the failure a call gets instead of an answer: a pending
// FailNext failure, else the random fault draw selects, if any.
func (a *Anthropic) injected(draw float64) (anthFailure, bool) {
	a.mu.Lock()
	if len(a.failures) > 0 {
		f := a.failures[0]
		a.failures = a.failures[1:]
		a.mu.Unlock()
		return f, true
	}
	a.mu.Unlock()
	if f, ok := a.fault(draw); ok {
		return anthFailure{status: f.Status, errType: f.Type, retryAfter: f.RetryAfter}, true
	}
	return anthFailure{}, false
}

// cacheLocked applies prompt caching to req at now and returns its input
// tokens as the API bills them: plain input, cache writes and cache reads.
// A marked prefix shorter than the model's minimum is not cached at all, as
// in the API: no entry, no write, no read, and its tokens are plain input.
// a.mu must be held.
func (a *Anthropic) cacheLocked(req AnthropicRequest, cacheable bool, now time.Time) AnthropicUsage {
	systemTokens := int64(len(req.System) / 4)
	u := AnthropicUsage{InputTokens: int64(len(req.Prompt) / 4)}
	if !cacheable || systemTokens < anthMinCacheTokens(req.Model) {
		u.InputTokens += systemTokens
		return u
	}
	key := sha256.Sum256([]byte(req.Model + "\x00" + req.System))
	if last, ok := a.cache[key]; ok && now.Sub(last) < anthCacheTTL {
		u.CacheReadInputTokens = systemTokens
	} else {
		u.CacheCreationInputTokens = systemTokens
	}
	for k, last := range a.cache {
		if now.Sub(last) >= anthCacheTTL {
			delete(a.cache, k)
		}
	}
	a.cache[key] = now // a read refreshes the entry, as the API does
	return u
}

// message answers req as the model: it runs the responder, cuts the answer
// at max_tokens, records the call and its usage (u holds the input tokens
// cacheLocked counted), and returns the message object the API sends with
// the usage it reports. An error is the responder's, which the API reports
// as an api_error; nothing is recorded then.
func (a *Anthropic) message(req AnthropicRequest, u AnthropicUsage) (map[string]any, AnthropicUsage, error) {
	answer, err := a.opts.Respond(req)
	if err != nil {
		return nil, AnthropicUsage{}, err
	}
	text, err := anthAnswerText(answer)
	if err != nil {
		return nil, AnthropicUsage{}, err
	}
	stopReason := "end_turn"
	outputTokens := max(int64(len(text)/4), 1)
	if outputTokens > int64(req.MaxTokens) {
		// Cut the answer where the model would have run out of tokens.
		outputTokens = int64(req.MaxTokens)
		text = text[:min(len(text), req.MaxTokens*4)]
		stopReason = "max_tokens"
	}
	u.Calls, u.OutputTokens = 1, outputTokens

	a.mu.Lock()
	a.calls++
	a.requests = append(a.requests, req)
	// Recorded before the answer is written, so that a client that has read
	// it finds it in Usage; the body below is built from the same values.
	a.usage[req.Model] = a.usage[req.Model].Add(u)
	if req.Batch {
		a.batchUsage[req.Model] = a.batchUsage[req.Model].Add(u)
	}
	a.mu.Unlock()

	tier := "standard"
	if req.Batch {
		tier = "batch"
	}
	body := map[string]any{
		"id":            "msg_" + rand.Text(),
		"type":          "message",
		"role":          "assistant",
		"model":         req.Model,
		"content":       []any{map[string]any{"type": "text", "text": text}},
		"stop_reason":   stopReason,
		"stop_sequence": nil,
		"usage": map[string]any{
			"input_tokens":                u.InputTokens,
			"output_tokens":               u.OutputTokens,
			"cache_creation_input_tokens": u.CacheCreationInputTokens,
			"cache_read_input_tokens":     u.CacheReadInputTokens,
			"cache_creation": map[string]any{
				"ephemeral_5m_input_tokens": u.CacheCreationInputTokens,
				"ephemeral_1h_input_tokens": 0,
			},
			"service_tier": tier,
		},
	}
	return body, u, nil
}

// Add returns the field-by-field sum of u and o.
func (u AnthropicUsage) Add(o AnthropicUsage) AnthropicUsage {
	u.Calls += o.Calls
	u.InputTokens += o.InputTokens
	u.OutputTokens += o.OutputTokens
	u.CacheCreationInputTokens += o.CacheCreationInputTokens
	u.CacheReadInputTokens += o.CacheReadInputTokens
	return u
}

// anthMinCacheTokens is the shortest prefix, in tokens, that model caches:
// the "minimum cacheable prompt length" of Anthropic's prompt caching
// documentation (https://platform.claude.com/docs/en/build-with-claude/prompt-caching).
// Model ids are matched by substring, so dated ids such as
// claude-haiku-4-5-20251001 get their family's minimum; an unknown model
// gets 1024, the minimum of most models.
func anthMinCacheTokens(model string) int64 {
	has := func(families ...string) bool {
		for _, f := range families {
			if strings.Contains(model, f) {
				return true
			}
		}
		return false
	}
	switch {
	case has("claude-opus-4-6", "claude-opus-4-5", "claude-haiku-4-5"):
		return 4096
	case has("claude-sonnet-4-6", "claude-3-5-haiku", "claude-3-haiku"):
		return 2048
	}
	return 1024 // claude-sonnet-4-5, claude-sonnet-4, claude-opus-4(-1), claude-3-7-sonnet, ...
}

// checkRequest runs what every API call meets before its own work: the
// latency, the key, the version header, then a pending or random fault.
// fail writes an error answer: with the rate-limit headers for the Messages
// API, without for the batch endpoints. It reports whether the call goes on.
func (a *Anthropic) checkRequest(w http.ResponseWriter, r *http.Request,
	fail func(w http.ResponseWriter, status int, errType, message string, retryAfter time.Duration)) bool {
	if !a.wait(r) {
		return false
	}
	if !a.authorized(r.Header) {
		anthWriteError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key", 0)
		return false
	}
	// The draw is spent even when a pending failure or a bad request
	// answers instead, so that a seed gives the same faults either way.
	a.mu.Lock()
	draw := a.rng.Float64()
	a.mu.Unlock()
	if r.Header.Get("anthropic-version") == "" {
		fail(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required", 0)
		return false
	}
	if f, ok := a.injected(draw); ok {
		fail(w, f.status, f.errType, anthMessageForType(f.errType), f.retryAfter)
		return false
	}
	return true
}

// fault returns the random fault that draw, a number in [0, 1), selects.
func (a *Anthropic) fault(draw float64) (AnthropicFault, bool) {
	cum := 0.0
	for _, f := range a.opts.Faults {
		cum += f.Probability
		if draw < cum {
			return f, true
		}
	}
	return AnthropicFault{}, false
}

// writeError writes an error answer to an authenticated call, with the
// rate-limit headers as the buckets stand.
func (a *Anthropic) writeError(w http.ResponseWriter, status int, errType, message string, retryAfter time.Duration) {
	a.mu.Lock()
	a.writeLimitHeaders(w.Header(), a.opts.Now())
	a.mu.Unlock()
	anthWriteError(w, status, errType, message, retryAfter)
}

// count records the status of the answer w sent, if it sent one (a call
// abandoned by its client during Latency gets none).
func (a *Anthropic) count(w *anthAnswerWriter) {
	if w.status == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answers[w.status]++
}

// anthAnswerWriter remembers the status a handler answered with.
type anthAnswerWriter struct {
	http.ResponseWriter
	status int
}

func (w *anthAnswerWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *anthAnswerWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// anthBucket is one rate limit as a token bucket: it holds up to limit
// units and refills continuously at limit per minute. The level may go
// below zero when a call uses more than it was admitted with (its output).
type anthBucket struct {
	limit float64
	level float64
	last  time.Time // when level was last brought up to date
}

// anthBucketSlack absorbs floating-point error, so that a bucket refilled
// to exactly n units counts as holding n.
const anthBucketSlack = 1e-9

func newAnthBucket(limit int64) anthBucket {
	return anthBucket{limit: float64(limit), level: float64(limit)}
}

// refill brings the level up to date at now. A clock that steps back
// refills nothing.
func (b *anthBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.level = min(b.limit, b.level+float64(d)*b.limit/float64(time.Minute))
		b.last = now
	}
}

func (b *anthBucket) take(n float64) { b.level -= n }

// wait returns how long until the bucket holds n units; 0 if it does now.
// A call needing more than the whole bucket waits until it is full (and is
// turned away again then, as the API would).
func (b *anthBucket) wait(n float64) time.Duration {
	if b.level+anthBucketSlack >= n {
		return 0
	}
	return b.until(min(n, b.limit))
}

// until returns how long the bucket takes to refill to level n.
func (b *anthBucket) until(n float64) time.Duration {
	if b.level+anthBucketSlack >= n {
		return 0
	}
	return time.Duration(math.Ceil((n - b.level) * float64(time.Minute) / b.limit))
}

// remaining is the whole units in the bucket, as the headers report them.
func (b *anthBucket) remaining() int64 {
	return max(int64(math.Floor(b.level+anthBucketSlack)), 0)
}

// reset is when the bucket will be full again, rounded up to the second
// the header can express.
func (b *anthBucket) reset(now time.Time) time.Time {
	t := now.Add(b.until(b.limit)).UTC()
	if s := t.Truncate(time.Second); !s.Equal(t) {
		t = s.Add(time.Second)
	}
	return t
}

// authorized reports whether the request carries the configured key. The
// API takes a key in x-api-key; the Go SDK v2 sends it as a bearer token,
// so both are accepted, and every credential presented must match.
func (a *Anthropic) authorized(h http.Header) bool {
	a.mu.Lock()
	key := a.apiKey
	a.mu.Unlock()
	xKey := h.Get("x-api-key")
	bearer, hasBearer := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if xKey == "" && !hasBearer {
		return false
	}
	if xKey != "" && xKey != key {
		return false
	}
	if hasBearer && bearer != key {
		return false
	}
	return true
}

// anthDecode checks a wire request the way the API does and flattens it.
func anthDecode(wire anthWireRequest) (req AnthropicRequest, cacheable bool, problem string) {
	switch {
	case wire.Model == "":
		return req, false, "model: Field required"
	case wire.MaxTokens == nil:
		return req, false, "max_tokens: Field required"
	case *wire.MaxTokens < 0:
		return req, false, "max_tokens: Input should be greater than or equal to 0"
	case len(wire.Messages) == 0:
		return req, false, "messages: Field required"
	}
	system, cacheable, err := anthText(wire.System)
	if err != nil {
		return req, false, "system: " + err.Error()
	}
	var prompts []string
	for i, m := range wire.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return req, false, fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		text, _, err := anthText(m.Content)
		if err != nil {
			return req, false, fmt.Sprintf("messages.%d.content: %v", i, err)
		}
		prompts = append(prompts, text)
	}
	req = AnthropicRequest{
		Model:     wire.Model,
		System:    system,
		Prompt:    strings.Join(prompts, "\n\n"),
		MaxTokens: *wire.MaxTokens,
	}
	if oc := wire.OutputConfig; oc != nil && oc.Format != nil {
		if oc.Format.Type != "json_schema" {
			return req, false, "output_config.format.type: Input should be 'json_schema'"
		}
		if oc.Format.Schema == nil {
			return req, false, "output_config.format.schema: Field required"
		}
		req.Schema = oc.Format.Schema
	}
	return req, cacheable, ""
}

// anthAnswerText turns a responder's value into the text block's text.
func anthAnswerText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case json.RawMessage:
		return string(v), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode answer: %w", err)
	}
	return string(b), nil
}

// writeLimitHeaders writes the rate-limit headers for the buckets as they
// stand at now: each bucket's limit, its whole units remaining and when it
// will be full again. a.mu must be held.
func (a *Anthropic) writeLimitHeaders(h http.Header, now time.Time) {
	for _, b := range []struct {
		name   string
		bucket *anthBucket
	}{{"requests", &a.reqBucket}, {"tokens", &a.tokBucket}} {
		b.bucket.refill(now)
		prefix := "anthropic-ratelimit-" + b.name + "-"
		h.Set(prefix+"limit", strconv.FormatInt(int64(b.bucket.limit), 10))
		h.Set(prefix+"remaining", strconv.FormatInt(b.bucket.remaining(), 10))
		h.Set(prefix+"reset", b.bucket.reset(now).Format(time.RFC3339))
	}
}

// anthWriteError writes the API's error body, with a retry-after header in
// whole seconds (rounded up) when retryAfter > 0.
func anthWriteError(w http.ResponseWriter, status int, errType, message string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("retry-after", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	anthWriteJSON(w, status, map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": errType, "message": message},
		"request_id": anthRequestID(w),
	})
}

// anthRequestID returns the response's request id, assigning one first.
func anthRequestID(w http.ResponseWriter) string {
	id := w.Header().Get("request-id")
	if id == "" {
		id = "req_" + rand.Text()
		w.Header().Set("request-id", id)
	}
	return id
}

func anthWriteJSON(w http.ResponseWriter, status int, v any) {
	anthRequestID(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// anthTypeForStatus is the error type the API uses for status.
func anthTypeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

func anthMessageForType(errType string) string {
	switch errType {
	case "rate_limit_error":
		return "Number of requests has exceeded your rate limit. Please try again later."
	case "overloaded_error":
		return "Overloaded"
	case "authentication_error":
		return "invalid x-api-key"
	case "permission_error":
		return "Your API key does not have permission to use the specified resource."
	case "not_found_error":
		return "The requested resource could not be found."
	case "invalid_request_error":
		return "Invalid request."
	}
	return "Internal server error"
}

// AnthropicSchemaResponder is the fake's default responder: it fills the
// request's JSON schema with plausible values (the first enum value or
// const, "example" for strings, 1 for numbers, false for booleans, arrays
// of one item or minItems, every object property), so any schema gets a
// valid answer. Without a schema it answers with prose.
func AnthropicSchemaResponder(req AnthropicRequest) (any, error) {
	if req.Schema == nil {
		return "This is a fake answer from the Anthropic fake.", nil
	}
	return anthFill(req.Schema, req.Schema, 0), nil
}

// anthFill returns a value matching schema; root resolves "$ref"s.
func anthFill(schema, root map[string]any, depth int) any {
	if depth > 16 || schema == nil {
		return nil
	}
	if ref, ok := schema["$ref"].(string); ok {
		return anthFill(anthResolve(ref, root), root, depth+1)
	}
	if c, ok := schema["const"]; ok {
		return c
	}
	if enum, ok := schema["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if alts, ok := schema[k].([]any); ok && len(alts) > 0 {
			if first, ok := alts[0].(map[string]any); ok {
				return anthFill(first, root, depth+1)
			}
		}
	}

	typ, _ := schema["type"].(string)
	if types, ok := schema["type"].([]any); ok {
		for _, t := range types {
			if s, _ := t.(string); s != "null" {
				typ = s
				break
			}
		}
	}
	if typ == "" {
		if _, ok := schema["properties"]; ok {
			typ = "object"
		} else if _, ok := schema["items"]; ok {
			typ = "array"
		}
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := schema["properties"].(map[string]any)
		for name, p := range props {
			ps, _ := p.(map[string]any)
			out[name] = anthFill(ps, root, depth+1)
		}
		return out
	case "array":
		n := 1
		if m, ok := schema["minItems"].(float64); ok && int(m) > n {
			n = int(m)
		}
		items, _ := schema["items"].(map[string]any)
		out := make([]any, n)
		for i := range out {
			out[i] = anthFill(items, root, depth+1)
		}
		return out
	case "string":
		return "example"
	case "integer", "number":
		if m, ok := schema["minimum"].(float64); ok && m > 1 {
			return m
		}
		return 1
	case "boolean":
		return false
	}
	return nil
}

// anthResolve finds a local "#/$defs/..." or "#/definitions/..." reference.
func anthResolve(ref string, root map[string]any) map[string]any {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = root
	for _, part := range strings.Split(path, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	s, _ := cur.(map[string]any)
	return s
}
