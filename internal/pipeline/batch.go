package pipeline

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/store"
)

// Events a repository lists in batch_events are answered through the
// Message Batches API, at half the price, within 24 hours:
//
//  1. The delivery's job plans it as usual, reserves the budget at the
//     batch price, stores the request as a batch item and sets the
//     delivery's status to batched, in one transaction; the job ends.
//  2. The leader's periodic job (RunBatches) submits the pending items as
//     few batches as the API's limits allow, and collects the batches that
//     ended: an answer settles the ledger at the batch price and is stored
//     as the delivery's analysis, a failure settles the ledger with its
//     error; either way the delivery is queued again, in the same
//     transaction.
//  3. The delivery's new job finds the stored answer and acts on it like any
//     other; after a failure it asks the Messages API instead.

// errBatched ends a job whose delivery waits for the Message Batches API.
var errBatched = errors.New("waiting for the Message Batches API")

// batchedReason is a batched delivery's status reason.
const batchedReason = "waiting for the Message Batches API (half price; answered within 24 hours, usually minutes)"

// batchRequest is a batched delivery's request as stored with its batch
// item: what the model is asked, and what storing its answer as the
// delivery's analysis needs.
type batchRequest struct {
	Model     string         `json:"model"`
	System    string         `json:"system"`
	Prompt    string         `json:"prompt"`
	Schema    map[string]any `json:"schema"`
	MaxTokens int            `json:"max_tokens"`
	Kind      string         `json:"kind"`
	Thread    int            `json:"thread"`
	Omitted   []string       `json:"omitted,omitempty"` // files left out of a review's prompt
	Chars     int            `json:"chars"`             // the prompt's size, for the token estimator
}

func (r batchRequest) request() claude.Request {
	return claude.Request{Model: r.Model, System: r.System, Prompt: r.Prompt, Schema: r.Schema, MaxTokens: r.MaxTokens}
}

// customID names an item's request in its batch. The reservation's id
// makes each attempt of a delivery distinct.
func customID(it store.BatchItem) string {
	return "delivery-" + strconv.FormatInt(it.DeliveryID, 10) + "-" + strconv.FormatInt(it.UsageID, 10)
}

// batchable reports whether d is to be asked through the Message Batches
// API. It returns errBatched when d already waits for it (its job ran
// again: a replay, a rescued job), leaving d waiting. A delivery whose batch
// attempt failed is asked through the Messages API.
func (p *Pipeline) batchable(ctx context.Context, d store.Delivery, t *task) (bool, error) {
	if !t.settings.Batched(d.Event, d.Action) {
		return false, nil
	}
	it, err := p.store.BatchItemOf(ctx, d.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	switch it.State {
	case store.BatchPending, store.BatchSubmitted:
		// If the item finished in the meantime, the delivery is queued
		// again already, and that job acts on it.
		if _, err := p.store.KeepBatched(ctx, d.ID, batchedReason); err != nil {
			return false, err
		}
		return false, errBatched
	case store.BatchFailed:
		return false, nil
	}
	// Done, but its answer is gone (a replay asks afresh): batch it again.
	return true, nil
}

// toBatch stores req, reserved as usageID, as d's batch item, and sets d's
// status to batched. It returns errBatched.
func (p *Pipeline) toBatch(ctx context.Context, d store.Delivery, t *task, req claude.Request, chars int, usageID int64) error {
	body, err := json.Marshal(batchRequest{
		Model: req.Model, System: req.System, Prompt: req.Prompt, Schema: req.Schema, MaxTokens: req.MaxTokens,
		Kind: t.kind.name, Thread: t.number, Omitted: t.omitted, Chars: chars,
	})
	if err != nil {
		return permanentError{fmt.Errorf("encode batch request: %w", err)}
	}
	added, err := p.store.AddBatchItem(ctx, d.ID, usageID, string(body), batchedReason)
	if err != nil {
		return err
	}
	if !added {
		// Another run of this delivery got there first: this reservation
		// is not needed.
		if err := p.store.Settle(context.WithoutCancel(ctx), usageID, store.Settlement{Model: req.Model, Outcome: "not_sent"}); err != nil {
			return err
		}
	}
	return errBatched
}

// Enqueue queues a delivery's processing job within tx.
type Enqueue func(ctx context.Context, tx *sql.Tx, deliveryID int64) error

// RunBatches is one round of the Message Batches API, for the leader's
// periodic job: it submits every pending request, in as few batches as the
// API's limits allow, then applies the results of every batch that has
// ended, queueing each delivery again with enqueue. Each step is safe to
// repeat after a crash: an item stays pending until its batch is recorded
// (a batch the API created but hookwise did not record is paid for, its
// results ignored, and its items submitted again: never lost), and a result
// is applied once, with its ledger row, answer and job in one transaction.
func (p *Pipeline) RunBatches(ctx context.Context, enqueue Enqueue) error {
	return errors.Join(p.submitBatches(ctx, enqueue), p.collectBatches(ctx, enqueue))
}

// submitBatches submits the pending items.
func (p *Pipeline) submitBatches(ctx context.Context, enqueue Enqueue) error {
	for {
		items, err := p.store.PendingBatchItems(ctx, claude.MaxBatchRequests, claude.MaxBatchBytes)
		if err != nil || len(items) == 0 {
			return err
		}
		var reqs []claude.BatchRequest
		var sent []store.BatchItem
		for _, it := range items {
			var br batchRequest
			if err := json.Unmarshal([]byte(it.Request), &br); err != nil {
				if err := p.apply(ctx, "", it, claude.BatchResult{Err: fmt.Errorf("read stored batch request: %w", err)}, enqueue); err != nil {
					return err
				}
				continue
			}
			reqs = append(reqs, claude.BatchRequest{CustomID: customID(it), Request: br.request()})
			sent = append(sent, it)
		}
		if len(reqs) == 0 {
			continue
		}
		b, n, err := p.model.SubmitBatch(ctx, reqs)
		var temp interface{ Temporary() bool }
		if errors.As(err, &temp) && !temp.Temporary() {
			// The API will never take these requests as a batch: the
			// Messages API answers them, or says what is wrong with them.
			for _, it := range sent {
				if err := p.apply(ctx, "", it, claude.BatchResult{Err: err}, enqueue); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("submit a batch of %d requests: %w", len(reqs), err)
		}
		ids := make([]int64, n)
		for i, it := range sent[:n] {
			ids[i] = it.ID
		}
		if err := p.store.MarkBatchSubmitted(context.WithoutCancel(ctx), b.ID, ids); err != nil {
			return err
		}
		p.log.Info("batch submitted", "batch", b.ID, "requests", n)
	}
}

// collectBatches applies the results of the submitted batches that have
// ended. A batch that cannot be read now is tried again next time; the
// others go on.
func (p *Pipeline) collectBatches(ctx context.Context, enqueue Enqueue) error {
	ids, err := p.store.SubmittedBatches(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if err := p.collect(ctx, id, enqueue); err != nil {
			errs = append(errs, fmt.Errorf("batch %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// collect applies the results of batch id if it has ended.
func (p *Pipeline) collect(ctx context.Context, id string, enqueue Enqueue) error {
	b, err := p.model.Batch(ctx, id)
	var ce *claude.Error
	if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
		// The API no longer knows it (deleted, or the key changed
		// workspace): its requests go to the Messages API.
		return p.failRest(ctx, id, err, enqueue)
	}
	if err != nil {
		return err
	}
	if !b.Ended() {
		return nil
	}
	items, err := p.store.SubmittedItems(ctx, id)
	if err != nil {
		return err
	}
	waiting := make(map[string]store.BatchItem, len(items))
	for _, it := range items {
		waiting[customID(it)] = it
	}
	for r, err := range p.model.BatchResults(ctx, b) {
		var temp interface{ Temporary() bool }
		if errors.As(err, &temp) && !temp.Temporary() {
			// Results that will never be read (archived after 29 days).
			return p.failRest(ctx, id, err, enqueue)
		}
		if err != nil {
			return err
		}
		it, ok := waiting[r.CustomID]
		if !ok {
			continue // applied before, or not ours
		}
		delete(waiting, r.CustomID)
		if err := p.apply(ctx, id, it, r, enqueue); err != nil {
			return err
		}
	}
	// Anything without a result goes to the Messages API.
	return p.failRest(ctx, id, fmt.Errorf("batch %s ended without a result for the request", id), enqueue)
}

// failRest fails the items of batch id that are still waiting for a result.
func (p *Pipeline) failRest(ctx context.Context, id string, cause error, enqueue Enqueue) error {
	items, err := p.store.SubmittedItems(ctx, id)
	if err != nil {
		return err
	}
	for _, it := range items {
		if err := p.apply(ctx, id, it, claude.BatchResult{Err: cause}, enqueue); err != nil {
			return err
		}
	}
	return nil
}

// apply records the result of item it (of batch batchID; "" if never
// submitted) and queues its delivery again: a success settles the ledger at
// the batch price and stores the answer, a failure settles the ledger with
// the error, so that the delivery's next job asks the Messages API.
func (p *Pipeline) apply(ctx context.Context, batchID string, it store.BatchItem, r claude.BatchResult, enqueue Enqueue) error {
	d, err := p.store.Delivery(ctx, it.DeliveryID)
	gone := errors.Is(err, store.ErrNotFound)
	if gone {
		// Nothing to act on: record what the request cost all the same.
		d = store.Delivery{ID: it.DeliveryID}
	} else if err != nil {
		return err
	}
	var br batchRequest
	_ = json.Unmarshal([]byte(it.Request), &br) // a request that cannot be read fails below
	res, callErr := r.Result, r.Err
	model := cmp.Or(res.Model, br.Model)
	usage := usageOf(res)
	micros := p.prices.For(model).Batch().Micros(usage)
	result := res.JSON
	if callErr == nil && len(br.Omitted) > 0 {
		// As from the Messages API: the answer names the files left out.
		result, callErr = withNotReviewed(result, br.Omitted)
	}
	o := store.BatchOutcome{Item: it, Settlement: settlement(model, usage, micros, res, callErr)}
	if callErr == nil {
		a := analysisOf(d, br.Thread, br.Kind, model, result, usage, micros, res)
		o.Analysis = &a
		o.Reason = "answered by the Message Batches API (" + batchID + "); queued to act on the answer"
	} else {
		o.Error = callErr.Error()
		o.Reason = fmt.Sprintf("not answered by the Message Batches API (%v); queued for the Messages API", callErr)
	}
	done, err := p.store.FinishBatchItem(ctx, o, func(tx *sql.Tx) error {
		if gone {
			return nil
		}
		return enqueue(ctx, tx, d.ID)
	})
	if err != nil || !done {
		return err
	}
	log := p.log.With("delivery", d.GUID, "event", d.Event, "action", d.Action, "repo", d.Repo, "batch", batchID)
	if callErr != nil {
		log.Warn("batched request failed: the Messages API answers it instead", "err", callErr)
	} else {
		log.Info("batched request answered", "model", model, "input_tokens", usage.Input, "output_tokens", usage.Output)
		p.est.Learn(br.Model, br.Chars, usage.Input+usage.CacheWrite+usage.CacheRead)
	}
	p.m.batchCall(model, res, callErr)
	p.spend(ctx, d, model, micros)
	return nil
}
