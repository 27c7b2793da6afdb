package pipeline

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

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
//     transaction. Each submission records its intent before the batch is
//     created and the batch's id after; a submission a crash left between
//     the two is resolved from the API's list of batches (resolveIntents),
//     never by submitting its requests blindly again.
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

// customID names a delivery's request in the batch of submission attempt.
// The attempt is random (crypto/rand, 26 letters and digits), so that
// results carrying it can only come from that submission: a batch found in
// the API's listing is recognised by them, and attempts never mix.
func customID(attempt string, deliveryID int64) string {
	return "hw-" + attempt + "-" + strconv.FormatInt(deliveryID, 10)
}

// sentAs returns the custom id item it was submitted under. Items submitted
// before custom ids were recorded were named by delivery and reservation.
func sentAs(it store.BatchItem) string {
	if it.CustomID != "" {
		return it.CustomID
	}
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
	case store.BatchPending, store.BatchSubmitting, store.BatchSubmitted:
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
// periodic job: it settles the submissions a crash left unrecorded, submits
// every pending request, in as few batches as the API's limits allow, then
// applies the results of every batch that has ended, queueing each delivery
// again with enqueue. Each step is safe to repeat after a crash: a
// submission's intent is recorded before its batch is created, so that a
// batch the API created but hookwise did not record is found and adopted,
// never paid for twice; and a result is applied once, with its ledger row,
// answer and job in one transaction.
func (p *Pipeline) RunBatches(ctx context.Context, enqueue Enqueue) error {
	return errors.Join(p.resolveIntents(ctx), p.submitBatches(ctx, enqueue), p.collectBatches(ctx, enqueue))
}

// submitBatches submits the pending items.
func (p *Pipeline) submitBatches(ctx context.Context, enqueue Enqueue) error {
	for {
		items, err := p.store.PendingBatchItems(ctx, claude.MaxBatchRequests, claude.MaxBatchBytes)
		if err != nil || len(items) == 0 {
			return err
		}
		attempt := rand.Text()
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
			it.CustomID = customID(attempt, it.DeliveryID)
			reqs = append(reqs, claude.BatchRequest{CustomID: it.CustomID, Request: br.request()})
			sent = append(sent, it)
		}
		if len(reqs) == 0 {
			continue
		}
		n, err := p.model.FitBatch(reqs)
		if err != nil {
			// The API will never take these requests as a batch: the
			// Messages API answers them, or says what is wrong with them.
			if err := p.failAll(ctx, sent, err, enqueue); err != nil {
				return err
			}
			continue
		}
		if err := p.submit(ctx, attempt, sent[:n], reqs[:n], enqueue); err != nil {
			return err
		}
	}
}

// submit creates the batch of items as submission attempt: it records the
// intent first, and the batch's id once the API has created it. When the
// API's answer is lost, the intent stays for resolveIntents.
func (p *Pipeline) submit(ctx context.Context, attempt string, items []store.BatchItem, reqs []claude.BatchRequest, enqueue Enqueue) error {
	items, err := p.store.RecordBatchIntent(ctx, attempt, items)
	if err != nil {
		return err
	}
	b, n, err := p.model.SubmitBatch(ctx, reqs)
	var ce *claude.Error
	switch {
	case err == nil:
	case errors.As(err, &ce) && ce.NoEffect() && !ce.Temporary():
		// The API will never take these requests as a batch.
		return p.failAll(ctx, items, err, enqueue)
	case errors.As(err, &ce) && ce.NoEffect():
		// Refused for now (a rate limit, an overload): no batch exists, and
		// the requests wait for the next round, under new custom ids.
		if _, rerr := p.store.ReleaseBatchIntent(context.WithoutCancel(ctx), attempt); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("submit a batch of %d requests: %w", len(reqs), err)
	default:
		return fmt.Errorf("submit a batch of %d requests (whether the API created it is found out from its list of batches): %w", len(reqs), err)
	}
	if n != len(reqs) {
		// FitBatch said otherwise: those left out find no result in the
		// batch, and go to the Messages API.
		p.log.Warn("batch holds fewer requests than submitted", "batch", b.ID, "requests", n, "submitted", len(reqs))
	}
	if _, err := p.store.MarkBatchSubmitted(context.WithoutCancel(ctx), attempt, b.ID); err != nil {
		return fmt.Errorf("%w (the batch is found in the API's list of batches and adopted)", err)
	}
	p.log.Info("batch submitted", "batch", b.ID, "requests", n)
	return nil
}

// failAll fails items that no batch holds, with cause.
func (p *Pipeline) failAll(ctx context.Context, items []store.BatchItem, cause error, enqueue Enqueue) error {
	for _, it := range items {
		if err := p.apply(ctx, "", it, claude.BatchResult{Err: cause}, enqueue); err != nil {
			return err
		}
	}
	return nil
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
		waiting[sentAs(it)] = it
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
	micros := p.opts.Prices.For(model).Batch().Micros(usage)
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
	log := p.deliveryLog(d).With("batch", batchID)
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

// A submission whose batch's id was never recorded (the process crashed,
// the answer to the create was lost, or recording it failed) may or may not
// have made a batch. Its requests are submitted again only once the API's
// list of batches shows that none holds them; a batch that does is adopted.
const (
	// batchClockSkew allows for hookwise's clock and the API's to differ:
	// a submission's batch is looked for among those created from this
	// long before its intent was recorded.
	batchClockSkew = time.Hour
	// batchCreateSettle is how long a create request may still take effect
	// after its intent was recorded: twice the model client's timeout.
	// Until then, a batch not listed yet may still appear.
	batchCreateSettle = 10 * time.Minute
)

// resolveIntents settles the submissions whose batch's id is not recorded.
// Any batch the API lists that hookwise did not record, created since just
// before a submission's intent and holding as many requests, may be that
// submission's: once it has ended, its results tell (their custom ids
// carry the submission's random attempt), and it is adopted; while it is in
// progress, the submission waits. A submission that no listed batch can be
// is released, its requests submitted again.
func (p *Pipeline) resolveIntents(ctx context.Context) error {
	intents, err := p.store.BatchIntents(ctx)
	if err != nil || len(intents) == 0 {
		return err
	}
	listed, err := p.model.BatchesSince(ctx, intents[0].At.Add(-batchClockSkew))
	if err != nil {
		return fmt.Errorf("list batches to settle %d unrecorded submissions: %w", len(intents), err)
	}
	ids := make([]string, len(listed))
	for i, b := range listed {
		ids[i] = b.ID
	}
	recorded, err := p.store.RecordedBatches(ctx, ids)
	if err != nil {
		return err
	}
	var unrecorded []claude.Batch
	for _, b := range listed {
		if !recorded[b.ID] {
			unrecorded = append(unrecorded, b)
		}
	}
	r := &resolver{p: p, unrecorded: unrecorded, customIDs: map[string]map[string]bool{}, adopted: map[string]bool{}}
	var errs []error
	for _, in := range intents {
		if err := r.resolve(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("submission %s: %w", in.Attempt, err))
		}
	}
	return errors.Join(errs...)
}

// resolver settles the unrecorded submissions of one round against one
// listing of the API's batches.
type resolver struct {
	p          *Pipeline
	unrecorded []claude.Batch             // listed, not recorded by hookwise, newest first
	customIDs  map[string]map[string]bool // the custom ids of each ended batch read so far
	adopted    map[string]bool            // batches adopted this round
}

// resolve adopts the batch of submission in, or waits for the batches that
// may be its own, or releases it.
func (r *resolver) resolve(ctx context.Context, in store.BatchIntent) error {
	log := r.p.log.With("submission", in.Attempt, "requests", len(in.Items))
	ours := make(map[string]bool, len(in.Items))
	for _, it := range in.Items {
		ours[sentAs(it)] = true
	}
	inProgress := 0
	for _, b := range r.unrecorded {
		if r.adopted[b.ID] || b.CreatedAt.Before(in.At.Add(-batchClockSkew)) || b.Requests() != int64(len(in.Items)) {
			continue // not this submission's: adopted by another, made before it, or of another size
		}
		if !b.Ended() {
			inProgress++
			continue
		}
		ids, err := r.results(ctx, b)
		if err != nil {
			return err // cannot tell: the submission waits
		}
		if !holdsAny(ids, ours) {
			continue
		}
		if _, err := r.p.store.MarkBatchSubmitted(context.WithoutCancel(ctx), in.Attempt, b.ID); err != nil {
			return err
		}
		r.adopted[b.ID] = true
		log.Info("batch adopted: the API created it for this submission, which was not recorded", "batch", b.ID)
		return nil
	}
	if inProgress > 0 {
		log.Info("unrecorded submission waits: a batch in progress may be its own", "batches_in_progress", inProgress)
		return nil
	}
	if r.p.now().Sub(in.At) < batchCreateSettle {
		return nil // its create may still take effect
	}
	if _, err := r.p.store.ReleaseBatchIntent(ctx, in.Attempt); err != nil {
		return err
	}
	log.Warn("unrecorded submission made no batch: its requests are submitted again")
	return nil
}

// results returns the custom ids of ended batch b's results.
func (r *resolver) results(ctx context.Context, b claude.Batch) (map[string]bool, error) {
	if ids, ok := r.customIDs[b.ID]; ok {
		return ids, nil
	}
	ids := map[string]bool{}
	for res, err := range r.p.model.BatchResults(ctx, b) {
		if err != nil {
			return nil, fmt.Errorf("read the results of batch %s: %w", b.ID, err)
		}
		ids[res.CustomID] = true
	}
	r.customIDs[b.ID] = ids
	return ids, nil
}

// holdsAny reports whether any of ids is one of ours. The attempt in our
// custom ids is random: no other submission's results carry it.
func holdsAny(ids, ours map[string]bool) bool {
	for id := range ids {
		if ours[id] {
			return true
		}
	}
	return false
}
