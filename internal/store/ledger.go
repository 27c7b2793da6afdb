package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Analysis is one model answer and what it cost.
type Analysis struct {
	DeliveryID       int64
	Repo             string
	Thread           int
	Kind             string
	Model            string
	Result           string // the structured answer, JSON
	InputTokens      int64
	OutputTokens     int64
	CacheWriteTokens int64
	CacheReadTokens  int64
	CostMicros       int64 // millionths of a dollar
	Latency          time.Duration
	RequestID        string
	CreatedAt        time.Time
}

// SaveAnalysis stores a model answer for a delivery. A second answer for the
// same delivery is ignored: the first one is what was acted on.
func (s *Store) SaveAnalysis(ctx context.Context, a Analysis) error {
	return s.saveAnalysis(ctx, s.DB, a)
}

// Analysis returns the stored answer for a delivery, or ErrNotFound.
func (s *Store) Analysis(ctx context.Context, deliveryID int64) (Analysis, error) {
	var a Analysis
	var latency, created int64
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT delivery_id, repo, thread, kind, model, result, input_tokens,
		output_tokens, cache_write_tokens, cache_read_tokens, cost_micros, latency_ms, request_id, created_at
		FROM hw_analyses WHERE delivery_id = ?`), deliveryID).Scan(
		&a.DeliveryID, &a.Repo, &a.Thread, &a.Kind, &a.Model, &a.Result, &a.InputTokens, &a.OutputTokens,
		&a.CacheWriteTokens, &a.CacheReadTokens, &a.CostMicros, &latency, &a.RequestID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Analysis{}, ErrNotFound
	}
	if err != nil {
		return Analysis{}, fmt.Errorf("analysis of delivery %d: %w", deliveryID, err)
	}
	a.Latency = time.Duration(latency) * time.Millisecond
	a.CreatedAt = time.UnixMilli(created).UTC()
	return a, nil
}

// Write is a ledger row: a GitHub comment hookwise owns, by what it answers.
type Write struct {
	Key        string
	Repo       string
	Thread     int
	CommentID  int64
	DeliveryID int64
}

// WriteFor returns the ledger row for key, or ErrNotFound.
func (s *Store) WriteFor(ctx context.Context, key string) (Write, error) {
	w := Write{Key: key}
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT repo, thread, comment_id, delivery_id FROM hw_writes WHERE key = ?`), key).
		Scan(&w.Repo, &w.Thread, &w.CommentID, &w.DeliveryID)
	if errors.Is(err, sql.ErrNoRows) {
		return Write{}, ErrNotFound
	}
	if err != nil {
		return Write{}, fmt.Errorf("ledger %s: %w", key, err)
	}
	return w, nil
}

// RecordWrite adds or updates the ledger row for w.Key.
func (s *Store) RecordWrite(ctx context.Context, w Write) error {
	now := s.millis()
	_, err := s.DB.ExecContext(ctx, s.q(`INSERT INTO hw_writes (key, repo, thread, comment_id, delivery_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET comment_id = excluded.comment_id, delivery_id = excluded.delivery_id, updated_at = excluded.updated_at`),
		w.Key, w.Repo, w.Thread, w.CommentID, w.DeliveryID, now, now)
	if err != nil {
		return fmt.Errorf("record write %s: %w", w.Key, err)
	}
	return nil
}

// LockThread takes a lease on thread for owner until ttl from now. It
// returns false while another owner's lease is live. Taking a lease one
// already holds extends it.
func (s *Store) LockThread(ctx context.Context, thread, owner string, ttl time.Duration) (bool, error) {
	now := s.millis()
	res, err := s.DB.ExecContext(ctx, s.q(`INSERT INTO hw_thread_locks (thread, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (thread) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE hw_thread_locks.expires_at < ? OR hw_thread_locks.owner = excluded.owner`),
		thread, owner, now+ttl.Milliseconds(), now)
	if err != nil {
		return false, fmt.Errorf("lock thread %s: %w", thread, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lock thread %s: %w", thread, err)
	}
	return n > 0, nil
}

// UnlockThread releases owner's lease on thread.
func (s *Store) UnlockThread(ctx context.Context, thread, owner string) error {
	_, err := s.DB.ExecContext(ctx, s.q(`DELETE FROM hw_thread_locks WHERE thread = ? AND owner = ?`), thread, owner)
	if err != nil {
		return fmt.Errorf("unlock thread %s: %w", thread, err)
	}
	return nil
}

// Stats are totals over everything stored; they survive restarts.
type Stats struct {
	Deliveries       int64            `json:"deliveries"`
	ByStatus         map[string]int64 `json:"by_status"`
	ByEvent          map[string]int64 `json:"by_event"`
	ModelCalls       int64            `json:"model_calls"`
	InputTokens      int64            `json:"input_tokens"`
	OutputTokens     int64            `json:"output_tokens"`
	CacheReadTokens  int64            `json:"cache_read_tokens"`
	CacheWriteTokens int64            `json:"cache_write_tokens"`
	CostUSD          float64          `json:"cost_usd"`
	Comments         int64            `json:"comments"`
}

// Stats computes totals from the stored rows.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	st := Stats{ByStatus: map[string]int64{}, ByEvent: map[string]int64{}}
	for _, g := range []struct {
		col string
		m   map[string]int64
	}{{"status", st.ByStatus}, {"event", st.ByEvent}} {
		rows, err := s.DB.QueryContext(ctx, `SELECT `+g.col+`, COUNT(*) FROM hw_deliveries GROUP BY `+g.col)
		if err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return Stats{}, fmt.Errorf("stats: %w", err)
			}
			g.m[k] = n
			if g.col == "status" {
				st.Deliveries += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return Stats{}, fmt.Errorf("stats: %w", err)
		}
	}
	var micros int64
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(input_tokens),0), COALESCE(SUM(output_tokens),0),
		COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_tokens),0), COALESCE(SUM(cost_micros),0) FROM hw_analyses`).
		Scan(&st.ModelCalls, &st.InputTokens, &st.OutputTokens, &st.CacheReadTokens, &st.CacheWriteTokens, &micros)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	st.CostUSD = float64(micros) / 1e6
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM hw_writes`).Scan(&st.Comments); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// ForgetAnalysisTx deletes the stored answer for a delivery, so that the
// next run asks the model again.
func (s *Store) ForgetAnalysisTx(ctx context.Context, tx *sql.Tx, deliveryID int64) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM hw_analyses WHERE delivery_id = ?`), deliveryID); err != nil {
		return fmt.Errorf("forget analysis of delivery %d: %w", deliveryID, err)
	}
	return nil
}

// ReleaseWritesTx marks the comments a delivery wrote as no longer written
// by it, so that processing it again updates them instead of keeping them.
func (s *Store) ReleaseWritesTx(ctx context.Context, tx *sql.Tx, deliveryID int64) error {
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE hw_writes SET delivery_id = 0 WHERE delivery_id = ?`), deliveryID); err != nil {
		return fmt.Errorf("release writes of delivery %d: %w", deliveryID, err)
	}
	return nil
}
