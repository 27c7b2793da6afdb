package claude

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"regexp"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/hookwise/hookwise/internal/pace"
)

// The Message Batches API answers the same requests as the Messages API at
// half the price, asynchronously: a batch is submitted at once, processed
// within 24 hours (usually minutes), then its results are read.

// The API's limits on one batch.
const (
	MaxBatchRequests = 100_000
	MaxBatchBytes    = 256 << 20 // of the request body
)

// Error types of batched requests that were never processed. They are
// temporary: the request itself may succeed.
const (
	TypeBatchExpired  = "batch_expired"  // the batch reached its 24 hours first
	TypeBatchCanceled = "batch_canceled" // the batch was canceled first
)

// Processing statuses of a batch.
const (
	BatchInProgress = "in_progress"
	BatchCanceling  = "canceling"
	BatchEnded      = "ended"
)

// batchKey paces the batch endpoints apart from the model families: the API
// meters them on their own.
const batchKey = "batches"

// customIDRE is what the API accepts as a custom id.
var customIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// BatchRequest is one request of a batch.
type BatchRequest struct {
	// CustomID names the request in its batch; its result comes back
	// under it. 1 to 64 letters, digits, '-' and '_', unique in the batch.
	CustomID string
	Request
}

// Batch is a message batch as the API last reported it.
type Batch struct {
	ID     string
	Status string // BatchInProgress, BatchCanceling or BatchEnded
	// How many requests are in each state; all are Processing until the
	// batch ends.
	Processing, Succeeded, Errored, Canceled, Expired int64

	CreatedAt, ExpiresAt time.Time
	EndedAt              time.Time // zero until it ends
}

// Ended reports whether the batch has ended, so that its results can be read.
func (b Batch) Ended() bool { return b.Status == BatchEnded }

// Requests returns how many requests the batch holds, whatever their state.
func (b Batch) Requests() int64 {
	return b.Processing + b.Succeeded + b.Errored + b.Canceled + b.Expired
}

// BatchResult is the outcome of one request of an ended batch.
type BatchResult struct {
	CustomID string
	// Result is the answer, as Complete returns it; also set, for its
	// accounting, when Err is a TypeInvalidOutput error.
	Result Result
	// Err is nil, or a *Error: the request errored (with the API's error
	// type), expired or was canceled (TypeBatchExpired, TypeBatchCanceled),
	// or its answer is unusable (TypeInvalidOutput).
	Err error
}

// FitBatch reports how many of reqs, from the first, one batch can hold
// (MaxBatchRequests and MaxBatchBytes): exactly the requests SubmitBatch
// sends when given reqs. A caller that records what it is about to submit
// records that many. Requests the API is certain to reject are refused,
// as for Complete, and then the error, a *Error, says which.
func (c *Client) FitBatch(reqs []BatchRequest) (int, error) {
	params, err := c.batchParams(reqs)
	if err != nil {
		return 0, err
	}
	return len(params.Requests), nil
}

// SubmitBatch sends, as one batch, as many of reqs, from the first, as a
// batch can hold (FitBatch), and returns the batch and how many requests it
// holds. Requests the API is certain to reject are refused, as for
// Complete, and then none is sent. Every error is a *Error; one whose
// NoEffect is false leaves it unknown whether the API created the batch.
func (c *Client) SubmitBatch(ctx context.Context, reqs []BatchRequest) (Batch, int, error) {
	params, err := c.batchParams(reqs)
	if err != nil {
		return Batch{}, 0, err
	}
	var httpResp *http.Response
	b, err := c.sdk.Messages.Batches.New(pace.WithKey(ctx, batchKey), params, option.WithResponseInto(&httpResp))
	if err != nil {
		return Batch{}, 0, c.classify(err, httpResp)
	}
	return batchOf(b), len(params.Requests), nil
}

// batchParams builds the body of a batch of as many of reqs, from the
// first, as a batch can hold.
func (c *Client) batchParams(reqs []BatchRequest) (anthropic.MessageBatchNewParams, error) {
	params := anthropic.MessageBatchNewParams{}
	if len(reqs) == 0 {
		return params, &Error{Type: TypeInvalidRequest, Message: "a batch needs at least one request"}
	}
	const envelope = len(`{"requests":[]}`)
	size := envelope
	seen := map[string]bool{}
	for _, r := range reqs {
		if len(params.Requests) == c.batchLimits.requests {
			break
		}
		invalid := func(msg string) *Error {
			return &Error{Type: TypeInvalidRequest, Message: fmt.Sprintf("batch request %q: %s", r.CustomID, msg)}
		}
		if !customIDRE.MatchString(r.CustomID) {
			return params, invalid("custom id must be 1 to 64 letters, digits, '-' or '_'")
		}
		if seen[r.CustomID] {
			return params, invalid("custom id is not unique in the batch")
		}
		seen[r.CustomID] = true
		p, err := c.params(r.Request)
		if err != nil {
			e := err.(*Error)
			return params, invalid(e.Message)
		}
		br := anthropic.MessageBatchNewParamsRequest{CustomID: r.CustomID, Params: anthropic.MessageBatchNewParamsRequestParams{
			Model: p.Model, MaxTokens: p.MaxTokens, System: p.System, Messages: p.Messages, OutputConfig: p.OutputConfig,
		}}
		b, err := br.MarshalJSON()
		if err != nil {
			return params, invalid("encode: " + err.Error())
		}
		if size+len(b)+1 > c.batchLimits.bytes {
			if len(params.Requests) == 0 {
				return params, invalid(fmt.Sprintf("%d bytes: larger than a batch may be", len(b)))
			}
			break
		}
		size += len(b) + 1 // and a comma
		params.Requests = append(params.Requests, br)
	}
	return params, nil
}

// batchListPage is how many batches one page of the listing asks for: the
// API's most.
const batchListPage = 1000

// BatchesSince returns every batch of the API key's workspace created at
// or after since, newest first, as the API lists them: the complete
// listing, or an error (a *Error) and none. Batches created by anyone
// using the workspace are listed, not only hookwise's.
func (c *Client) BatchesSince(ctx context.Context, since time.Time) ([]Batch, error) {
	var out []Batch
	params := anthropic.MessageBatchListParams{Limit: anthropic.Int(int64(c.batchLimits.page))}
	for {
		var httpResp *http.Response
		page, err := c.sdk.Messages.Batches.List(pace.WithKey(ctx, batchKey), params, option.WithResponseInto(&httpResp))
		if err != nil {
			return nil, c.classify(err, httpResp)
		}
		for i := range page.Data {
			if page.Data[i].CreatedAt.Before(since) {
				return out, nil // the rest are older still
			}
			out = append(out, batchOf(&page.Data[i]))
		}
		if !page.HasMore || len(page.Data) == 0 || page.LastID == "" {
			return out, nil
		}
		params.AfterID = anthropic.String(page.LastID)
	}
}

// Batch returns the batch's status.
func (c *Client) Batch(ctx context.Context, id string) (Batch, error) {
	var httpResp *http.Response
	b, err := c.sdk.Messages.Batches.Get(pace.WithKey(ctx, batchKey), id, anthropic.MessageBatchGetParams{}, option.WithResponseInto(&httpResp))
	if err != nil {
		return Batch{}, c.classify(err, httpResp)
	}
	return batchOf(b), nil
}

// BatchResults streams the results of an ended batch, in the API's order
// (not the requests'). The error, a *Error, is that of reading the results;
// the stream ends after it. Each request's own failure is in its
// BatchResult.
func (c *Client) BatchResults(ctx context.Context, b Batch) iter.Seq2[BatchResult, error] {
	return func(yield func(BatchResult, error) bool) {
		if !b.Ended() {
			yield(BatchResult{}, &Error{Type: TypeInvalidRequest, Message: fmt.Sprintf("batch %s is %s: results come once it has ended", b.ID, b.Status)})
			return
		}
		stream := c.sdk.Messages.Batches.ResultsStreaming(pace.WithKey(ctx, batchKey), b.ID, anthropic.MessageBatchResultsParams{})
		defer stream.Close()
		for stream.Next() {
			if !yield(c.batchResult(b, stream.Current()), nil) {
				return
			}
		}
		if err := stream.Err(); err != nil {
			yield(BatchResult{}, c.classify(err, nil))
		}
	}
}

// batchResult turns one line of b's results into a BatchResult.
func (c *Client) batchResult(b Batch, r anthropic.MessageBatchIndividualResponse) BatchResult {
	out := BatchResult{CustomID: r.CustomID}
	switch r.Result.Type {
	case "succeeded":
		out.Result, out.Err = c.result(&r.Result.Message, b.ID, b.EndedAt.Sub(b.CreatedAt))
	case "errored":
		e := r.Result.Error
		typ := e.Error.Type
		if typ == "" {
			typ = "api_error"
		}
		out.Err = &Error{Type: typ, Message: c.scrub(e.Error.Message), RequestID: e.RequestID}
	case "expired":
		out.Err = &Error{Type: TypeBatchExpired, Message: "batch " + b.ID + " expired before the request was processed"}
	case "canceled":
		out.Err = &Error{Type: TypeBatchCanceled, Message: "batch " + b.ID + " was canceled before the request was processed"}
	default:
		out.Err = &Error{Type: "api_error", Message: fmt.Sprintf("batch %s: unknown result type %q", b.ID, r.Result.Type)}
	}
	return out
}

func batchOf(b *anthropic.MessageBatch) Batch {
	n := b.RequestCounts
	return Batch{
		ID: b.ID, Status: string(b.ProcessingStatus),
		Processing: n.Processing, Succeeded: n.Succeeded, Errored: n.Errored, Canceled: n.Canceled, Expired: n.Expired,
		CreatedAt: b.CreatedAt, ExpiresAt: b.ExpiresAt, EndedAt: b.EndedAt,
	}
}
