package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Requests for the Message Batches API wait in hw_batch_items: added by the
// job that planned them, submitted and collected by a periodic job. Every
// step is safe to repeat after a crash. Before a batch is created, its
// items record the intent (submitting: an attempt, their custom ids and the
// time); the batch's id is recorded after. An item left submitting by a
// crash is never submitted blindly again: its caller finds out from the API
// whether the batch exists. An item is finished only from the state it was
// read in, together with its ledger row, its answer and its delivery's new
// job, in one transaction.

// States of a batch item.
const (
	BatchPending    = "pending"    // waiting to be submitted
	BatchSubmitting = "submitting" // in a submission whose batch's id is not recorded yet
	BatchSubmitted  = "submitted"  // in batch BatchID, waiting for its result
	BatchDone       = "done"       // answered: the analysis is stored
	BatchFailed     = "failed"     // not answered: the delivery goes to the Messages API
)

// BatchItem is one delivery's request for the Message Batches API.
type BatchItem struct {
	ID         int64
	DeliveryID int64
	UsageID    int64  // the ledger row reserved for the request
	Request    string // the request, JSON, as the caller stored it
	BatchID    string // "" until submitted
	State      string
	Error      string // why it failed
	// Attempt names the submission the item was last sent in (random, one
	// per submission), CustomID the id its request was sent under, and
	// AttemptedAt when that submission's intent was recorded, before the
	// batch was created. All are empty while pending; CustomID is empty
	// too for an item submitted before custom ids were recorded.
	Attempt     string
	CustomID    string
	AttemptedAt time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const batchItemColumns = `id, delivery_id, usage_id, request, batch_id, state, error, attempt, custom_id, attempted_at, created_at, updated_at`

func scanBatchItem(row interface{ Scan(...any) error }) (BatchItem, error) {
	var it BatchItem
	var attempted, created, updated int64
	if err := row.Scan(&it.ID, &it.DeliveryID, &it.UsageID, &it.Request, &it.BatchID, &it.State, &it.Error,
		&it.Attempt, &it.CustomID, &attempted, &created, &updated); err != nil {
		return BatchItem{}, err
	}
	if attempted != 0 {
		it.AttemptedAt = time.UnixMilli(attempted).UTC()
	}
	it.CreatedAt, it.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return it, nil
}

// AddBatchItem stores a delivery's request (with the id of its ledger
// reservation) to be sent in the next batch, and sets the delivery's status
// to StatusBatched with reason, in one transaction. A delivery has one
// item: an item that is done (its answer since forgotten by a replay) is
// replaced, one that is waiting or failed is kept, and then nothing changes
// and AddBatchItem returns false.
func (s *Store) AddBatchItem(ctx context.Context, deliveryID, usageID int64, request, reason string) (bool, error) {
	added := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		now := s.millis()
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_batch_items (delivery_id, usage_id, request, batch_id, state, error, created_at, updated_at)
			VALUES (?, ?, ?, '', ?, '', ?, ?)
			ON CONFLICT (delivery_id) DO UPDATE SET usage_id = excluded.usage_id, request = excluded.request, batch_id = '',
				state = excluded.state, error = '', attempt = '', custom_id = '', attempted_at = 0,
				created_at = excluded.created_at, updated_at = excluded.updated_at
			WHERE hw_batch_items.state = ?`),
			deliveryID, usageID, request, BatchPending, now, now, BatchDone)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		added = true
		return s.setDeliveryStatus(ctx, tx, deliveryID, StatusBatched, reason)
	})
	if err != nil {
		return false, fmt.Errorf("add batch item of delivery %d: %w", deliveryID, err)
	}
	return added, nil
}

// BatchItemOf returns a delivery's batch item, or ErrNotFound.
func (s *Store) BatchItemOf(ctx context.Context, deliveryID int64) (BatchItem, error) {
	it, err := scanBatchItem(s.DB.QueryRowContext(ctx, s.q(`SELECT `+batchItemColumns+` FROM hw_batch_items WHERE delivery_id = ?`), deliveryID))
	if errors.Is(err, sql.ErrNoRows) {
		return BatchItem{}, ErrNotFound
	}
	if err != nil {
		return BatchItem{}, fmt.Errorf("batch item of delivery %d: %w", deliveryID, err)
	}
	return it, nil
}

// KeepBatched sets a delivery's status back to StatusBatched, with reason,
// if its item is still waiting (pending, submitting or submitted), and reports whether
// it did: a job run again while its delivery waits leaves it waiting.
func (s *Store) KeepBatched(ctx context.Context, deliveryID int64, reason string) (bool, error) {
	res, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_deliveries SET status = ?, reason = ?, updated_at = ?
		WHERE id = ? AND EXISTS (SELECT 1 FROM hw_batch_items WHERE delivery_id = ? AND state IN (?, ?, ?))`),
		StatusBatched, reason, s.millis(), deliveryID, deliveryID, BatchPending, BatchSubmitting, BatchSubmitted)
	if err != nil {
		return false, fmt.Errorf("keep delivery %d batched: %w", deliveryID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("keep delivery %d batched: %w", deliveryID, err)
	}
	return n > 0, nil
}

// PendingBatchItems returns the pending items, oldest first, as many as fit
// in limit items and maxBytes of requests (at least one).
func (s *Store) PendingBatchItems(ctx context.Context, limit, maxBytes int) ([]BatchItem, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT `+batchItemColumns+` FROM hw_batch_items WHERE state = ? ORDER BY id LIMIT ?`),
		BatchPending, limit)
	if err != nil {
		return nil, fmt.Errorf("pending batch items: %w", err)
	}
	defer rows.Close()
	var out []BatchItem
	size := 0
	for rows.Next() {
		it, err := scanBatchItem(rows)
		if err != nil {
			return nil, fmt.Errorf("pending batch items: %w", err)
		}
		if size += len(it.Request); size > maxBytes && len(out) > 0 {
			break
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// RecordBatchIntent records, before a batch is created, that the pending
// items are about to be submitted as attempt, each under its CustomID, and
// returns them as now stored (submitting, with the time). Either all of
// them move or, if any is no longer pending, none does and it fails.
func (s *Store) RecordBatchIntent(ctx context.Context, attempt string, items []BatchItem) ([]BatchItem, error) {
	out := make([]BatchItem, len(items))
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		now := s.millis()
		stmt, err := tx.PrepareContext(ctx, s.q(`UPDATE hw_batch_items SET state = ?, attempt = ?, custom_id = ?,
			attempted_at = ?, updated_at = ? WHERE id = ? AND state = ?`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i, it := range items {
			res, err := stmt.ExecContext(ctx, BatchSubmitting, attempt, it.CustomID, now, now, it.ID, BatchPending)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return cmp.Or(err, fmt.Errorf("item of delivery %d is no longer pending", it.DeliveryID))
			}
			it.State, it.Attempt, it.AttemptedAt = BatchSubmitting, attempt, time.UnixMilli(now).UTC()
			out[i] = it
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record the intent to submit %d items: %w", len(items), err)
	}
	return out, nil
}

// MarkBatchSubmitted records that the items of submission attempt are in
// batch batchID, and returns how many it moved: none when the submission
// was recorded before.
func (s *Store) MarkBatchSubmitted(ctx context.Context, attempt, batchID string) (int64, error) {
	res, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_batch_items SET batch_id = ?, state = ?, updated_at = ?
		WHERE state = ? AND attempt = ?`), batchID, BatchSubmitted, s.millis(), BatchSubmitting, attempt)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("mark submission %s as batch %s: %w", attempt, batchID, err)
}

// ReleaseBatchIntent returns the items of submission attempt to pending,
// for a submission its caller knows never made a batch: they are submitted
// again, under new custom ids. It returns how many it moved.
func (s *Store) ReleaseBatchIntent(ctx context.Context, attempt string) (int64, error) {
	res, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_batch_items SET state = ?, attempt = '', custom_id = '', attempted_at = 0,
		updated_at = ? WHERE state = ? AND attempt = ?`), BatchPending, s.millis(), BatchSubmitting, attempt)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("release submission %s: %w", attempt, err)
}

// BatchIntent is a submission whose batch's id is not recorded: its batch
// may or may not exist.
type BatchIntent struct {
	Attempt string
	At      time.Time   // when the intent was recorded, before the batch was created
	Items   []BatchItem // submitting, in the order they were sent
}

// BatchIntents returns the submissions whose batch's id is not recorded,
// oldest first.
func (s *Store) BatchIntents(ctx context.Context) ([]BatchIntent, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT `+batchItemColumns+` FROM hw_batch_items WHERE state = ? ORDER BY id`), BatchSubmitting)
	if err != nil {
		return nil, fmt.Errorf("batch intents: %w", err)
	}
	defer rows.Close()
	var out []BatchIntent
	index := map[string]int{}
	for rows.Next() {
		it, err := scanBatchItem(rows)
		if err != nil {
			return nil, fmt.Errorf("batch intents: %w", err)
		}
		i, ok := index[it.Attempt]
		if !ok {
			i = len(out)
			index[it.Attempt] = i
			out = append(out, BatchIntent{Attempt: it.Attempt, At: it.AttemptedAt})
		}
		out[i].Items = append(out[i].Items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("batch intents: %w", err)
	}
	slices.SortStableFunc(out, func(a, b BatchIntent) int { return a.At.Compare(b.At) })
	return out, nil
}

// RecordedBatches returns which of the batch ids hold items: the batches
// hookwise recorded (while their items are kept).
func (s *Store) RecordedBatches(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for chunk := range chunks(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := s.DB.QueryContext(ctx, s.q(`SELECT DISTINCT batch_id FROM hw_batch_items
			WHERE batch_id <> '' AND batch_id IN (`+strings.Repeat("?, ", len(chunk)-1)+`?)`), args...)
		if err != nil {
			return nil, fmt.Errorf("recorded batches: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("recorded batches: %w", err)
			}
			out[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("recorded batches: %w", err)
		}
	}
	return out, nil
}

func chunks[T any](ids []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(ids) > 0 {
			k := min(n, len(ids))
			if !yield(ids[:k]) {
				return
			}
			ids = ids[k:]
		}
	}
}

// SubmittedBatches returns the ids of the batches that hold items waiting
// for their results, oldest first.
func (s *Store) SubmittedBatches(ctx context.Context) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT batch_id FROM hw_batch_items WHERE state = ?
		GROUP BY batch_id ORDER BY MIN(id)`), BatchSubmitted)
	if err != nil {
		return nil, fmt.Errorf("submitted batches: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("submitted batches: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// SubmittedItems returns the items of batch batchID still waiting for their
// results.
func (s *Store) SubmittedItems(ctx context.Context, batchID string) ([]BatchItem, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT `+batchItemColumns+` FROM hw_batch_items
		WHERE state = ? AND batch_id = ? ORDER BY id`), BatchSubmitted, batchID)
	if err != nil {
		return nil, fmt.Errorf("items of batch %s: %w", batchID, err)
	}
	defer rows.Close()
	var out []BatchItem
	for rows.Next() {
		it, err := scanBatchItem(rows)
		if err != nil {
			return nil, fmt.Errorf("items of batch %s: %w", batchID, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// BatchOutcome is what became of one batch item.
type BatchOutcome struct {
	Item       BatchItem  // as read: it is finished only if still in this state and batch
	Settlement Settlement // what its request cost
	Analysis   *Analysis  // the answer; nil when the item failed
	Error      string     // why it failed
	Reason     string     // the delivery's status reason, as it is queued again
}

// FinishBatchItem records o in one transaction, if o.Item is still in the
// state and batch it was read in: the item done (its answer stored) or
// failed, its ledger row settled, its delivery queued again with o.Reason;
// then(tx) runs last, in the same transaction, to enqueue the delivery's
// job. It reports false, changing nothing, when the item was finished
// before: a result applied twice counts once.
func (s *Store) FinishBatchItem(ctx context.Context, o BatchOutcome, then func(*sql.Tx) error) (bool, error) {
	state := BatchDone
	if o.Analysis == nil {
		state = BatchFailed
	}
	finished := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE hw_batch_items SET state = ?, error = ?, updated_at = ?
			WHERE id = ? AND state = ? AND batch_id = ?`),
			state, o.Error, s.millis(), o.Item.ID, o.Item.State, o.Item.BatchID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		finished = true
		if err := s.settle(ctx, tx, o.Item.UsageID, o.Settlement); err != nil {
			return err
		}
		if o.Analysis != nil {
			if err := s.saveAnalysis(ctx, tx, *o.Analysis); err != nil {
				return err
			}
		}
		if err := s.setDeliveryStatus(ctx, tx, o.Item.DeliveryID, StatusQueued, o.Reason); err != nil {
			return err
		}
		return then(tx)
	})
	if err != nil {
		return false, fmt.Errorf("finish batch item of delivery %d: %w", o.Item.DeliveryID, err)
	}
	return finished, nil
}

// settle is Settle in db: the database, or a transaction of FinishBatchItem.
func (s *Store) settle(ctx context.Context, db dbtx, id int64, st Settlement) error {
	_, err := db.ExecContext(ctx, s.q(`UPDATE hw_usage SET settled_at = ?, model = ?, outcome = ?, input_tokens = ?,
		output_tokens = ?, cache_write_tokens = ?, cache_read_tokens = ?, cost_micros = ?, latency_ms = ?, request_id = ?
		WHERE id = ?`),
		s.millis(), st.Model, st.Outcome, st.Input, st.Output, st.CacheWrite, st.CacheRead, st.Micros,
		st.Latency.Milliseconds(), st.RequestID, id)
	if err != nil {
		return fmt.Errorf("settle model call %d: %w", id, err)
	}
	return nil
}

// saveAnalysis is SaveAnalysis in db: the database, or a transaction of
// FinishBatchItem.
func (s *Store) saveAnalysis(ctx context.Context, db dbtx, a Analysis) error {
	_, err := db.ExecContext(ctx, s.q(`INSERT INTO hw_analyses
		(delivery_id, repo, thread, kind, model, result, input_tokens, output_tokens,
		 cache_write_tokens, cache_read_tokens, cost_micros, latency_ms, request_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (delivery_id) DO NOTHING`),
		a.DeliveryID, a.Repo, a.Thread, a.Kind, a.Model, a.Result, a.InputTokens, a.OutputTokens,
		a.CacheWriteTokens, a.CacheReadTokens, a.CostMicros, a.Latency.Milliseconds(), a.RequestID, s.millis())
	if err != nil {
		return fmt.Errorf("save analysis: %w", err)
	}
	return nil
}
