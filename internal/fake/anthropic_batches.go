package fake

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The Message Batches API of the Anthropic fake, as documented at
// https://platform.claude.com/docs/en/build-with-claude/batch-processing:
//
//	POST /v1/messages/batches               {"requests": [{"custom_id", "params"}]} → a message_batch
//	GET  /v1/messages/batches               ?limit&before_id&after_id → a page of message_batch, newest first
//	GET  /v1/messages/batches/{id}          → the message_batch, "ended" with a results_url once processed
//	GET  /v1/messages/batches/{id}/results  → JSONL, one {"custom_id", "result"} line per request
//
// A batch's requests are answered like calls to /v1/messages (the same
// responder, prompt cache and usage totals), in order, when the batch ends,
// but take no rate-limit capacity: the API meters batches apart. Random
// faults and FailNext apply to the batch endpoints as to any call; a single
// request of a batch fails with FailNextBatchRequests; HangUpAfterBatchCreates
// creates a batch but loses the answer.

const (
	anthDefaultBatchDelay = 300 * time.Millisecond
	// The API's limits on one batch.
	anthBatchMaxRequests = 100_000
	anthBatchMaxBytes    = 256 << 20
	// anthBatchLifetime is how long a batch may take before its unanswered
	// requests expire.
	anthBatchLifetime = 24 * time.Hour
	// The listing's page size: by default, and at most.
	anthBatchPageDefault = 20
	anthBatchPageMax     = 1000
)

var anthCustomIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// AnthropicBatch is a message batch as the fake holds it.
type AnthropicBatch struct {
	ID       string
	Requests int
	Ended    bool
	// Counts of the results, once Ended.
	Succeeded, Errored, Canceled, Expired int
}

type anthBatch struct {
	id       string
	created  time.Time
	expires  time.Time
	endAt    time.Time // zero: in progress until EndBatches, or until it expires
	ended    time.Time // zero while in progress
	requests []anthBatchRequest
	results  []byte // the JSONL results, once ended
	counts   anthBatchCounts
}

type anthBatchRequest struct {
	customID string
	params   json.RawMessage
}

type anthBatchCounts struct {
	Processing int64 `json:"processing"`
	Succeeded  int64 `json:"succeeded"`
	Errored    int64 `json:"errored"`
	Canceled   int64 `json:"canceled"`
	Expired    int64 `json:"expired"`
}

type anthBatchFailure struct {
	result  string // errored, expired or canceled
	errType string // for errored
}

// Batches returns the batches created so far, oldest first.
func (a *Anthropic) Batches() []AnthropicBatch {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	out := make([]AnthropicBatch, 0, len(a.batchOrder))
	for _, id := range a.batchOrder {
		b := a.batches[id]
		out = append(out, AnthropicBatch{
			ID: b.id, Requests: len(b.requests), Ended: !b.ended.IsZero(),
			Succeeded: int(b.counts.Succeeded), Errored: int(b.counts.Errored),
			Canceled: int(b.counts.Canceled), Expired: int(b.counts.Expired),
		})
	}
	return out
}

// BatchUsage returns, by model id as requested, the part of Usage that
// came through message batches: the usage of every succeeded batch result.
func (a *Anthropic) BatchUsage() map[string]AnthropicUsage {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.batchUsage)
}

// EndBatches ends every batch in progress now, answering its requests.
func (a *Anthropic) EndBatches() {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	now := a.opts.Now()
	for _, id := range a.batchOrder {
		if b := a.batches[id]; b.ended.IsZero() {
			a.process(b, now, false)
		}
	}
}

// FailNextBatchRequests makes the next n batched requests to be answered
// end with result "errored" (with an error of type errType; "" is
// api_error), "expired" or "canceled" instead of an answer.
func (a *Anthropic) FailNextBatchRequests(result, errType string, n int) {
	switch result {
	case "errored", "expired", "canceled":
	default:
		panic(fmt.Sprintf("fake: FailNextBatchRequests(%q): want errored, expired or canceled", result))
	}
	if errType == "" {
		errType = "api_error"
	}
	a.bmu.Lock()
	defer a.bmu.Unlock()
	for range n {
		a.batchFailures = append(a.batchFailures, anthBatchFailure{result: result, errType: errType})
	}
}

// HangUpAfterBatchCreates makes the next n batch creations create their
// batch, which then runs as any other, but get no answer: the fake closes
// the connection instead, as when the network drops a response. The client
// cannot tell whether its batch exists.
func (a *Anthropic) HangUpAfterBatchCreates(n int) {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	a.batchHangUps += n
}

// serveBatches serves the Message Batches API; rest is the path after
// /v1/messages/batches. Its answers carry no rate-limit headers: those of
// the fake describe the Messages API's buckets, which batches do not use.
func (a *Anthropic) serveBatches(w *anthAnswerWriter, r *http.Request, rest string) {
	if !a.checkRequest(w, r, anthWriteError) {
		return
	}
	if rest == "" {
		switch r.Method {
		case http.MethodPost:
			a.createBatch(w, r)
		case http.MethodGet:
			a.listBatches(w, r)
		default:
			anthWriteError(w, http.StatusMethodNotAllowed, "invalid_request_error", "Method not allowed", 0)
		}
		return
	}
	id, sub, _ := strings.Cut(rest[1:], "/")
	if sub != "" && sub != "results" {
		anthWriteError(w, http.StatusNotFound, "not_found_error", "Not found", 0)
		return
	}
	if r.Method != http.MethodGet {
		anthWriteError(w, http.StatusMethodNotAllowed, "invalid_request_error", "Method not allowed", 0)
		return
	}
	a.bmu.Lock()
	defer a.bmu.Unlock()
	b, ok := a.batches[id]
	if !ok {
		anthWriteError(w, http.StatusNotFound, "not_found_error", "message batch "+id+" not found", 0)
		return
	}
	a.advance(b, a.opts.Now())
	if sub == "" {
		anthWriteJSON(w, http.StatusOK, b.object(r))
		return
	}
	if b.ended.IsZero() {
		anthWriteError(w, http.StatusBadRequest, "invalid_request_error",
			"message batch "+id+" is still in progress: its results are available once processing_status is ended", 0)
		return
	}
	anthRequestID(w)
	w.Header().Set("Content-Type", "application/x-jsonl")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.results)
}

// createBatch serves POST /v1/messages/batches. The batch is checked as a
// whole (size, count, custom ids) here; each request's params are checked
// when it is answered, and a bad one ends errored, as in the API.
func (a *Anthropic) createBatch(w *anthAnswerWriter, r *http.Request) {
	var body struct {
		Requests []struct {
			CustomID string          `json:"custom_id"`
			Params   json.RawMessage `json:"params"`
		} `json:"requests"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, anthBatchMaxBytes)).Decode(&body); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			anthWriteError(w, http.StatusRequestEntityTooLarge, "request_too_large",
				fmt.Sprintf("Request exceeds the maximum allowed number of bytes (%d)", anthBatchMaxBytes), 0)
			return
		}
		anthWriteError(w, http.StatusBadRequest, "invalid_request_error", "invalid JSON body: "+err.Error(), 0)
		return
	}
	invalid := func(format string, args ...any) {
		anthWriteError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf(format, args...), 0)
	}
	switch n := len(body.Requests); {
	case n == 0:
		invalid("requests: List should have at least 1 item after validation, not 0")
		return
	case n > anthBatchMaxRequests:
		invalid("requests: List should have at most %d items after validation, not %d", anthBatchMaxRequests, n)
		return
	}
	seen := make(map[string]bool, len(body.Requests))
	reqs := make([]anthBatchRequest, len(body.Requests))
	for i, q := range body.Requests {
		switch {
		case !anthCustomIDRE.MatchString(q.CustomID):
			invalid("requests.%d.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
			return
		case seen[q.CustomID]:
			invalid("requests.%d.custom_id: custom_id %q is not unique within the batch", i, q.CustomID)
			return
		case len(bytes.TrimSpace(q.Params)) == 0 || bytes.TrimSpace(q.Params)[0] != '{':
			invalid("requests.%d.params: Field required", i)
			return
		}
		seen[q.CustomID] = true
		reqs[i] = anthBatchRequest{customID: q.CustomID, params: q.Params}
	}
	now := a.opts.Now()
	b := &anthBatch{id: "msgbatch_" + rand.Text(), created: now, expires: now.Add(anthBatchLifetime), requests: reqs}
	if a.opts.BatchDelay >= 0 {
		b.endAt = now.Add(a.opts.BatchDelay)
	}
	a.bmu.Lock()
	a.batches[b.id] = b
	a.batchOrder = append(a.batchOrder, b.id)
	obj := b.object(r)
	hangUp := a.batchHangUps > 0
	if hangUp {
		a.batchHangUps--
	}
	a.bmu.Unlock()
	if hangUp {
		if conn, _, err := http.NewResponseController(w.ResponseWriter).Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	anthWriteJSON(w, http.StatusOK, obj)
}

// listBatches serves GET /v1/messages/batches: the batches, most recently
// created first, a page of limit (default 20, at most 1000) at a time. With
// after_id the page holds the batches just after that one in this order
// (older), with before_id those just before it (newer); has_more says
// whether more remain in the direction asked, and first_id and last_id are
// the cursors for the pages either side. A cursor naming no batch is a 400:
// the API does not document its answer, and a client that gets an error
// cannot take an incomplete listing for a complete one.
func (a *Anthropic) listBatches(w *anthAnswerWriter, r *http.Request) {
	q := r.URL.Query()
	invalid := func(format string, args ...any) {
		anthWriteError(w, http.StatusBadRequest, "invalid_request_error", fmt.Sprintf(format, args...), 0)
	}
	limit := anthBatchPageDefault
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > anthBatchPageMax {
			invalid("limit: Input should be an integer from 1 to %d", anthBatchPageMax)
			return
		}
		limit = n
	}
	before, after := q.Get("before_id"), q.Get("after_id")
	if before != "" && after != "" {
		invalid("before_id and after_id cannot both be given")
		return
	}
	a.bmu.Lock()
	defer a.bmu.Unlock()
	newest := make([]string, len(a.batchOrder))
	for i, id := range a.batchOrder {
		newest[len(newest)-1-i] = id
	}
	at := func(id string) (int, bool) {
		i := slices.Index(newest, id)
		if i < 0 {
			invalid("message batch %s not found: it cannot be a cursor", id)
		}
		return i, i >= 0
	}
	from, to, more := 0, min(limit, len(newest)), limit < len(newest)
	switch {
	case after != "":
		i, ok := at(after)
		if !ok {
			return
		}
		from, to = i+1, min(i+1+limit, len(newest))
		more = to < len(newest)
	case before != "":
		i, ok := at(before)
		if !ok {
			return
		}
		from, to = max(i-limit, 0), i
		more = from > 0
	}
	now := a.opts.Now()
	data := make([]map[string]any, 0, to-from)
	for _, id := range newest[from:to] {
		b := a.batches[id]
		a.advance(b, now)
		data = append(data, b.object(r))
	}
	page := map[string]any{"data": data, "has_more": more, "first_id": nil, "last_id": nil}
	if len(data) > 0 {
		page["first_id"], page["last_id"] = newest[from], newest[to-1]
	}
	anthWriteJSON(w, http.StatusOK, page)
}

// advance ends b if its time has come by now. a.bmu must be held.
func (a *Anthropic) advance(b *anthBatch, now time.Time) {
	switch {
	case !b.ended.IsZero():
	case !b.endAt.IsZero() && !now.Before(b.endAt) && b.endAt.Before(b.expires):
		a.process(b, b.endAt, false)
	case !now.Before(b.expires):
		a.process(b, b.expires, true)
	}
}

// process answers every request of b (or expires them all) and ends it at
// ended. a.bmu must be held.
func (a *Anthropic) process(b *anthBatch, ended time.Time, expire bool) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	for _, q := range b.requests {
		result := a.batchResult(q, expire)
		switch result["type"] {
		case "succeeded":
			b.counts.Succeeded++
		case "errored":
			b.counts.Errored++
		case "canceled":
			b.counts.Canceled++
		case "expired":
			b.counts.Expired++
		}
		_ = enc.Encode(map[string]any{"custom_id": q.customID, "result": result})
	}
	b.results = out.Bytes()
	b.ended = ended
}

// batchResult answers one batched request: the result object of its line
// in the results file. a.bmu must be held.
func (a *Anthropic) batchResult(q anthBatchRequest, expire bool) map[string]any {
	if expire {
		return map[string]any{"type": "expired"}
	}
	if len(a.batchFailures) > 0 {
		f := a.batchFailures[0]
		a.batchFailures = a.batchFailures[1:]
		if f.result != "errored" {
			return map[string]any{"type": f.result}
		}
		return anthErrored(f.errType, anthMessageForType(f.errType))
	}
	var wire anthWireRequest
	if err := json.Unmarshal(q.params, &wire); err != nil {
		return anthErrored("invalid_request_error", "params: "+err.Error())
	}
	req, cacheable, problem := anthDecode(wire)
	if problem != "" {
		return anthErrored("invalid_request_error", problem)
	}
	req.Batch = true
	a.mu.Lock()
	usage := a.cacheLocked(req, cacheable, a.opts.Now())
	a.mu.Unlock()
	msg, _, err := a.message(req, usage)
	if err != nil {
		return anthErrored("api_error", "Internal server error: "+err.Error())
	}
	return map[string]any{"type": "succeeded", "message": msg}
}

// anthErrored is the result of a batched request that failed: the error
// body the Messages API would have answered with.
func anthErrored(errType, message string) map[string]any {
	return map[string]any{"type": "errored", "error": map[string]any{
		"type":       "error",
		"error":      map[string]any{"type": errType, "message": message},
		"request_id": "req_" + rand.Text(),
	}}
}

// object is b as the API shows it: a message_batch object. a.bmu must be
// held.
func (b *anthBatch) object(r *http.Request) map[string]any {
	stamp := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	status, counts, resultsURL := "in_progress", anthBatchCounts{Processing: int64(len(b.requests))}, any(nil)
	if !b.ended.IsZero() {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		status, counts = "ended", b.counts
		resultsURL = scheme + "://" + r.Host + "/v1/messages/batches/" + b.id + "/results"
	}
	return map[string]any{
		"id":                  b.id,
		"type":                "message_batch",
		"processing_status":   status,
		"request_counts":      counts,
		"created_at":          stamp(b.created),
		"expires_at":          stamp(b.expires),
		"ended_at":            stamp(b.ended),
		"archived_at":         nil,
		"cancel_initiated_at": nil,
		"results_url":         resultsURL,
	}
}
