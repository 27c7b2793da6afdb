package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Requests for the Message Batches API wait in hw_batch_items: added by the
// job that planned them, submitted and collected by a periodic job. Every
// step is safe to repeat after a crash: an item stays pending until the id
// of the batch holding it is recorded (a batch created but not recorded is
// submitted again, never lost), and an item is finished only from the
// state it was read in, together with its ledger row, its answer and its
// delivery's new job, in one transaction.

// States of a batch item.
const (
	BatchPending   = "pending"   // waiting to be submitted
	BatchSubmitted = "submitted" // in batch BatchID, waiting for its result
	BatchDone      = "done"      // answered: the analysis is stored
	BatchFailed    = "failed"    // not answered: the delivery goes to the Messages API
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
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const batchItemColumns = `id, delivery_id, usage_id, request, batch_id, state, error, created_at, updated_at`

func scanBatchItem(row interface{ Scan(...any) error }) (BatchItem, error) {
	var it BatchItem
	var created, updated int64
	if err := row.Scan(&it.ID, &it.DeliveryID, &it.UsageID, &it.Request, &it.BatchID, &it.State, &it.Error, &created, &updated); err != nil {
		return BatchItem{}, err
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
				state = excluded.state, error = '', created_at = excluded.created_at, updated_at = excluded.updated_at
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
// if its item is still waiting (pending or submitted), and reports whether
// it did: a job run again while its delivery waits leaves it waiting.
func (s *Store) KeepBatched(ctx context.Context, deliveryID int64, reason string) (bool, error) {
	res, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_deliveries SET status = ?, reason = ?, updated_at = ?
		WHERE id = ? AND EXISTS (SELECT 1 FROM hw_batch_items WHERE delivery_id = ? AND state IN (?, ?))`),
		StatusBatched, reason, s.millis(), deliveryID, deliveryID, BatchPending, BatchSubmitted)
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

// MarkBatchSubmitted records that the pending items ids were submitted in
// batch batchID.
func (s *Store) MarkBatchSubmitted(ctx context.Context, batchID string, ids []int64) error {
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		now := s.millis()
		// In chunks: SQLite caps the parameters of a statement.
		for chunk := range chunks(ids, 500) {
			args := []any{batchID, BatchSubmitted, now, BatchPending}
			for _, id := range chunk {
				args = append(args, id)
			}
			_, err := tx.ExecContext(ctx, s.q(`UPDATE hw_batch_items SET batch_id = ?, state = ?, updated_at = ?
				WHERE state = ? AND id IN (`+strings.Repeat("?, ", len(chunk)-1)+`?)`), args...)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark %d items submitted in batch %s: %w", len(ids), batchID, err)
	}
	return nil
}

func chunks(ids []int64, n int) func(yield func([]int64) bool) {
	return func(yield func([]int64) bool) {
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
