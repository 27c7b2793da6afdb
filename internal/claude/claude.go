// Package claude is hookwise's adapter to Anthropic's Messages API: a prompt
// and a JSON schema go in, the model's structured answer comes out, with
// its usage, the rate-limit state the API reported and errors classified
// for the job queue.
//
// The adapter never retries by itself: the job queue owns retries, and
// [Error.Temporary] and [Error.RetryAfter] tell it what to do.
package claude

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hookwise/hookwise/internal/pace"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// DefaultMaxConcurrency is the number of calls in flight when
// Options.MaxConcurrency is not set.
const DefaultMaxConcurrency = 4

// Error types that do not come from the API. API errors keep the type the
// API sent (rate_limit_error, overloaded_error, ...).
const (
	// TypeNetwork: the request did not get an HTTP response (connection
	// error, timeout, cancelled context). Status is 0.
	TypeNetwork = "network_error"
	// TypeInvalidOutput: the API answered 200 but the answer is not a
	// complete JSON object (truncated at max_tokens, a refusal, prose).
	// Status is 0.
	TypeInvalidOutput = "invalid_output"
	// TypeInvalidRequest is the API's own type for a bad request; the
	// client also uses it, with Status 0, for a Request it refuses to send.
	TypeInvalidRequest = "invalid_request_error"
)

// Options configures a Client.
type Options struct {
	APIKey     string
	BaseURL    string       // ANTHROPIC_BASE_URL; "" = SDK default
	HTTPClient *http.Client // nil = SDK default
	// MaxConcurrency caps the calls in flight; callers beyond it wait
	// (or give up when their context ends). Default DefaultMaxConcurrency.
	MaxConcurrency int
	// SlotWait: a call that finds no free slot within this long is not
	// made; Complete returns an error that wraps a *pace.WaitError, so
	// that its job snoozes rather than times out. 0 waits as long as the
	// context lets it.
	SlotWait time.Duration
}

// Client calls the Messages API. It is safe for concurrent use.
type Client struct {
	sdk      anthropic.Client
	apiKey   string
	sem      chan struct{}
	slotWait time.Duration
	now      func() time.Time

	// batchLimits are MaxBatchRequests, MaxBatchBytes and the listing's
	// page size (batchListPage), smaller in tests.
	batchLimits struct{ requests, bytes, page int }
}

// New returns a Client. It reads nothing from the environment: the SDK's
// own environment defaults are switched off so that only cmd/ decides
// where credentials and the base URL come from.
func New(opts Options) *Client {
	n := opts.MaxConcurrency
	if n <= 0 {
		n = DefaultMaxConcurrency
	}
	sdkOpts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(),
		option.WithAPIKey(opts.APIKey),
		option.WithMaxRetries(0), // the job queue owns retries
	}
	if opts.BaseURL != "" {
		sdkOpts = append(sdkOpts, option.WithBaseURL(opts.BaseURL))
	}
	if opts.HTTPClient != nil {
		sdkOpts = append(sdkOpts, option.WithHTTPClient(opts.HTTPClient))
	}
	c := &Client{
		sdk:      anthropic.NewClient(sdkOpts...),
		apiKey:   opts.APIKey,
		sem:      make(chan struct{}, n),
		slotWait: opts.SlotWait,
		now:      time.Now,
	}
	c.batchLimits.requests, c.batchLimits.bytes, c.batchLimits.page = MaxBatchRequests, MaxBatchBytes, batchListPage
	return c
}

// Request is one structured-output call.
type Request struct {
	Model string
	// System is the stable part of the prompt (instructions and repository
	// context). It is sent as one system text block marked for prompt
	// caching, so repeated calls with the same System are billed as cache
	// reads.
	System string
	// Prompt is the per-event part, sent as the single user message.
	Prompt string
	// Schema is the JSON schema the answer must match.
	Schema    map[string]any
	MaxTokens int
}

// Usage is the token usage the API reported for one call.
type Usage struct {
	InputTokens, OutputTokens, CacheCreationInputTokens, CacheReadInputTokens int64
}

// Result is a successful call's answer and its accounting.
type Result struct {
	JSON       json.RawMessage // the structured answer, validated to be a JSON object
	Usage      Usage
	Model      string // model the API says answered
	RequestID  string // from the request-id response header; of a batched request, its batch's id
	StopReason string
	// Latency is the time of the HTTP call, not counting the wait for a
	// concurrency slot; of a batched request, its batch's time from
	// creation to end.
	Latency time.Duration
}

// Complete sends req and returns the model's structured answer.
//
// Every error is a *Error. When the API answered but the answer is unusable
// (Type TypeInvalidOutput), the returned Result still carries Usage, Model,
// RequestID, StopReason and Latency, because the tokens were spent and the
// cost ledger must count them; only JSON is empty.
func (c *Client) Complete(ctx context.Context, req Request) (Result, error) {
	params, err := c.params(req)
	if err != nil {
		return Result{}, err
	}

	if err := c.takeSlot(ctx); err != nil {
		return Result{}, c.networkError(err)
	}
	defer func() { <-c.sem }()

	var httpResp *http.Response
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) { sent.Store(info.Err == nil) },
	})
	start := time.Now()
	// Anthropic's rate limits are per model family: pace each on its own.
	msg, err := c.sdk.Messages.New(pace.WithKey(ctx, Family(req.Model)), params, option.WithResponseInto(&httpResp))
	latency := time.Since(start)
	if err != nil {
		e := c.classify(err, httpResp)
		e.Unanswered = e.Status == 0 && sent.Load()
		return Result{}, e
	}
	requestID := ""
	if httpResp != nil {
		requestID = httpResp.Header.Get("request-id")
	}
	return c.result(msg, requestID, latency)
}

// result turns a message into a Result: its accounting, and its answer
// checked to be a complete JSON object. An unusable answer is a
// TypeInvalidOutput *Error, returned with the Result's accounting.
func (c *Client) result(msg *anthropic.Message, requestID string, latency time.Duration) (Result, error) {
	res := Result{
		Usage: Usage{
			InputTokens:              msg.Usage.InputTokens,
			OutputTokens:             msg.Usage.OutputTokens,
			CacheCreationInputTokens: msg.Usage.CacheCreationInputTokens,
			CacheReadInputTokens:     msg.Usage.CacheReadInputTokens,
		},
		Model:      string(msg.Model),
		RequestID:  requestID,
		StopReason: string(msg.StopReason),
		Latency:    latency,
	}
	var text strings.Builder
	for _, block := range msg.Content {
		if block.Type == "text" {
			text.WriteString(block.Text)
		}
	}
	answer, err := c.answer(res, text.String())
	if err != nil {
		return res, err
	}
	res.JSON = answer
	return res, nil
}

// params validates req and builds the SDK parameters. Requests the API is
// certain to reject are refused here, as permanent errors, without a call.
func (c *Client) params(req Request) (anthropic.MessageNewParams, error) {
	var problem string
	switch {
	case req.Model == "":
		problem = "model is required"
	case req.MaxTokens <= 0:
		problem = "max_tokens must be positive"
	case req.Prompt == "":
		problem = "prompt is required"
	case len(req.Schema) == 0:
		problem = "schema is required"
	}
	if problem != "" {
		return anthropic.MessageNewParams{}, &Error{Type: TypeInvalidRequest, Message: problem}
	}
	// The SDK refuses non-streaming calls it expects to outlast its
	// timeout; say so now, as a permanent error, not as a network error.
	if _, err := anthropic.CalculateNonStreamingTimeout(req.MaxTokens, req.Model, nil); err != nil {
		return anthropic.MessageNewParams{}, &Error{Type: TypeInvalidRequest, Message: "max_tokens too large: " + err.Error(), err: err}
	}

	p := anthropic.MessageNewParams{
		Model:     req.Model,
		MaxTokens: int64(req.MaxTokens),
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(req.Prompt))},
		OutputConfig: anthropic.OutputConfigParam{
			Format: anthropic.JSONOutputFormatParam{Schema: req.Schema},
		},
	}
	if req.System != "" { // the API rejects an empty text block
		p.System = []anthropic.TextBlockParam{{
			Text:         req.System,
			CacheControl: anthropic.NewCacheControlEphemeralParam(),
		}}
	}
	return p, nil
}

// answer checks that the model's text is a complete JSON object, or one
// cut at max_tokens that salvage can close.
func (c *Client) answer(res Result, text string) (json.RawMessage, error) {
	invalid := func(msg string) *Error {
		return &Error{Type: TypeInvalidOutput, Message: msg, RequestID: res.RequestID}
	}
	switch res.StopReason {
	case string(anthropic.StopReasonMaxTokens):
		if obj, ok := salvage(text); ok {
			return obj, nil
		}
		return nil, invalid("answer truncated at max_tokens")
	case string(anthropic.StopReasonRefusal):
		return nil, invalid("model refused to answer")
	}
	raw := bytes.TrimSpace([]byte(text))
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, invalid(fmt.Sprintf("answer is not a JSON object (stop_reason %q, %d bytes)", res.StopReason, len(raw)))
	}
	return json.RawMessage(raw), nil
}

// Family names a model's family ("opus", "sonnet", "haiku"), which shares
// rate limits; an unknown model is its own family.
func Family(model string) string {
	for _, f := range []string{"opus", "sonnet", "haiku"} {
		if strings.Contains(model, f) {
			return f
		}
	}
	return model
}

// Error is every error Complete and the batch methods return, and the
// error of every batched request that failed.
type Error struct {
	Status     int    // HTTP status; 0 when there was no HTTP error response
	Type       string // Anthropic error type, or one of the Type constants
	Message    string
	RequestID  string
	RetryAfter time.Duration // how long the API asked us to wait; 0 if it did not say
	// Unanswered: the request was sent whole and no response came (a
	// timeout or a reset connection). The API may have run it, and billed
	// it.
	Unanswered bool

	err error // the cause, for errors.Is and errors.As
}

// Error describes the failure. It never contains the API key: messages
// are scrubbed of it when the Error is built.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("claude: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	b.WriteString(e.Type)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the cause: the SDK's *anthropic.Error, a network error or
// a context error.
func (e *Error) Unwrap() error { return e.err }

// Temporary reports whether the same request may succeed later.
//
// Network errors and 408, 409, 429, 500, 502, 503, 504 and 529 are
// temporary. Bad requests, authentication and permission errors, unknown
// models, oversized requests (400, 401, 403, 404, 413, 422) are not, and
// neither is an invalid answer: a truncated answer comes back truncated
// again with the same max_tokens, and structured outputs make prose
// answers a sign of a bad schema or prompt, not of bad luck. Other 5xx are
// taken as temporary, other 4xx as permanent. A Status-0 error (one with no
// HTTP error response: a network error, an invalid answer, a failed
// request of a batch) goes by its type: the types of those permanent
// statuses are permanent, and every other type, known or not, is
// temporary: the queue's bounded attempts make that the cheaper mistake.
func (e *Error) Temporary() bool {
	switch e.Status {
	case 0:
		return !permanentTypes[e.Type]
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests, 529:
		return true
	}
	return e.Status >= 500
}

// NoEffect reports whether the API certainly did not act on the request:
// the client refused it before sending, the connection was never made (or
// the circuit breaker was open), or the API answered with an error that
// means it did nothing (any 4xx, or 529 overloaded). After any other
// failure (another 5xx, a dropped connection, a timeout) the request may
// have taken effect although no answer says so: a batch may exist.
func (e *Error) NoEffect() bool {
	switch {
	case e.Status >= 400 && e.Status < 500, e.Status == 529:
		return true
	case e.Status != 0:
		return false
	case e.Type == TypeInvalidRequest:
		return true
	case e.Type != TypeNetwork:
		return false
	}
	var open *pace.OpenError
	var op *net.OpError
	return errors.As(e.err, &open) || (errors.As(e.err, &op) && op.Op == "dial")
}

// RetryAfterDuration is how long the job should wait before trying again
// without counting an attempt: a 429 (at least a second), or an open
// circuit (which arrives as a transport error). 0 for everything else.
func (e *Error) RetryAfterDuration() time.Duration {
	if e.Status == http.StatusTooManyRequests {
		return max(e.RetryAfter, time.Second)
	}
	var ra interface{ RetryAfterDuration() time.Duration }
	if e.Status == 0 && errors.As(e.err, &ra) {
		return ra.RetryAfterDuration()
	}
	return 0
}

// RetryDelay is the least wait the API asked for before a retry of a
// failure that is not a rate limit (a 529 or 503 with retry-after).
func (e *Error) RetryDelay() time.Duration {
	if e.Status == http.StatusTooManyRequests {
		return 0
	}
	return e.RetryAfter
}

// permanentTypes are the error types of requests that cannot succeed as
// they are, for errors that carry no HTTP status.
var permanentTypes = map[string]bool{
	TypeInvalidOutput:      true,
	TypeInvalidRequest:     true,
	"authentication_error": true,
	"permission_error":     true,
	"not_found_error":      true,
	"request_too_large":    true,
	"billing_error":        true,
}

// takeSlot waits for one of the MaxConcurrency slots, at most slotWait.
func (c *Client) takeSlot(ctx context.Context) error {
	var expired <-chan time.Time
	if c.slotWait > 0 {
		timer := time.NewTimer(c.slotWait)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return &pace.WaitError{Upstream: pace.Anthropic, Key: "max_concurrency", What: "a free slot of anthropic.max_concurrency",
			RetryAfter: c.slotWait}
	}
}

func (c *Client) networkError(err error) *Error {
	return &Error{Type: TypeNetwork, Message: c.scrub(err.Error()), err: err}
}

// classify turns an SDK error into a *Error. (The rate-limit headers of
// the response are the pacer's to learn, in the transport.)
func (c *Client) classify(err error, resp *http.Response) *Error {
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		return c.networkError(err)
	}
	if apiErr.Response != nil {
		resp = apiErr.Response
	}
	e := &Error{
		Status:    apiErr.StatusCode,
		Type:      string(apiErr.Type()),
		Message:   c.scrub(apiErr.Message),
		RequestID: apiErr.RequestID,
		err:       err,
	}
	if e.Type == "" {
		e.Type = anthStatusType(e.Status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(e.Status)
	}
	if resp != nil {
		e.RetryAfter = retryAfter(resp.Header, c.now())
		if e.RequestID == "" {
			e.RequestID = resp.Header.Get("request-id")
		}
	}
	return e
}

// anthStatusType names the error type of a response whose body did not,
// e.g. an HTML page from a proxy.
func anthStatusType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == 529:
		return "overloaded_error"
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status >= 500:
		return "api_error"
	}
	return TypeInvalidRequest
}

// scrub removes the API key from s, in case a proxy or the API echoes it.
func (c *Client) scrub(s string) string {
	if c.apiKey == "" {
		return s
	}
	return strings.ReplaceAll(s, c.apiKey, "[redacted]")
}

// retryAfter reads how long the API asks us to wait: retry-after-ms or
// retry-after (see pace.RetryAfter), else the latest reset of a rate-limit
// bucket whose remaining count is 0; capped at pace.MaxRetryAfter.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := pace.RetryAfter(h, now); ok && d > 0 {
		return d
	}
	var wait time.Duration
	for _, b := range anthBuckets {
		rem, err := strconv.ParseInt(h.Get("anthropic-ratelimit-"+b+"-remaining"), 10, 64)
		if err != nil || rem > 0 {
			continue
		}
		reset, err := time.Parse(time.RFC3339, h.Get("anthropic-ratelimit-"+b+"-reset"))
		if err != nil {
			continue
		}
		wait = max(wait, reset.Sub(now))
	}
	return min(wait, pace.MaxRetryAfter)
}

// anthBuckets are the rate-limit buckets the API reports, as named in its
// anthropic-ratelimit-<bucket>-{limit,remaining,reset} headers.
var anthBuckets = []string{"requests", "tokens", "input-tokens", "output-tokens"}
