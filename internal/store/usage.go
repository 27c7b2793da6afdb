package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/hookwise/hookwise/internal/pace"
	"strconv"
	"strings"
	"time"
)

// StatusDeferred is a delivery whose model call a budget held back; it is
// queued again once ResumeAt has passed.
const StatusDeferred = "deferred"

// UsageCall is one model call as the ledger records it before the call.
type UsageCall struct {
	DeliveryID     int64
	Repo, Owner    string
	InstallationID int64
	Thread         string
	Event, Kind    string // "issues.opened"; the analysis kind
	Model          string
	Batch          bool
	EstimateMicros int64 // the most the call can cost
}

// Limit is one budget a call counts against: a scope ("global",
// "repo:owner/name", "org:owner", "installation:ID") over one period.
type Limit struct {
	Scope      string
	Period     string // "day 2026-11-29" or "month 2026-11"
	Start, End time.Time
	Micros     int64
}

// Kind is "day" or "month": the first word of Period.
func (l Limit) Kind() string {
	kind, _, _ := strings.Cut(l.Period, " ")
	return kind
}

// OverBudget is the refusal of a call whose estimate would take Limit past
// its amount.
type OverBudget struct {
	Limit    Limit
	Spent    int64 // settled cost plus live reservations, before this call
	Estimate int64
}

func (e *OverBudget) Error() string {
	return fmt.Sprintf("budget %s for %s: $%.4f spent of $%.2f; the call may cost up to $%.4f",
		e.Limit.Period, e.Limit.Scope, float64(e.Spent)/1e6, float64(e.Limit.Micros)/1e6, float64(e.Estimate)/1e6)
}

// Reserve writes call to the ledger as a reservation of its estimated cost
// (expires_at, ttl from now, marks when it is overdue) unless that would take one of limits past its amount: then
// it writes nothing and returns an *OverBudget for the first such limit.
// Reservations are serialised on one row lock, so concurrent workers and
// instances never both take the last of a budget.
func (s *Store) Reserve(ctx context.Context, call UsageCall, limits []Limit, ttl time.Duration) (int64, error) {
	var id int64
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if len(limits) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE hw_budget_lock SET n = n + 1 WHERE id = 1`); err != nil {
				return err
			}
		}
		for _, l := range limits {
			spent, err := s.spent(ctx, tx, l)
			if err != nil {
				return err
			}
			if spent+call.EstimateMicros > l.Micros {
				return &OverBudget{Limit: l, Spent: spent, Estimate: call.EstimateMicros}
			}
		}
		now := s.millis()
		batch := 0
		if call.Batch {
			batch = 1
		}
		var err error
		id, err = s.insertReturningID(ctx, tx, `INSERT INTO hw_usage (created_at, expires_at, delivery_id, repo, owner,
			installation_id, thread, event, kind, model, batch, estimate_micros)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			now, now+ttl.Milliseconds(), call.DeliveryID, call.Repo, call.Owner, call.InstallationID,
			call.Thread, call.Event, call.Kind, call.Model, batch, call.EstimateMicros)
		return err
	})
	var over *OverBudget
	if errors.As(err, &over) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("reserve model call: %w", err)
	}
	return id, nil
}

// Unreserve drops reservation id of a call that was never sent (it waited
// for an allowance instead): there is nothing to record or to count.
func (s *Store) Unreserve(ctx context.Context, id int64) error {
	if _, err := s.DB.ExecContext(ctx, s.q(`DELETE FROM hw_usage WHERE id = ? AND outcome = 'reserved'`), id); err != nil {
		return fmt.Errorf("drop reservation %d: %w", id, err)
	}
	return nil
}

// Settlement is what a model call really cost.
type Settlement struct {
	Model                                        string // the model that answered
	Outcome                                      string // "ok" or the error type
	Input, Output, CacheWrite, CacheRead, Micros int64
	Latency                                      time.Duration
	RequestID                                    string
}

// Settle replaces reservation id with what the call cost.
func (s *Store) Settle(ctx context.Context, id int64, st Settlement) error {
	return s.settle(ctx, s.DB, id, st)
}

// Spent is what l's scope has spent in l's period: settled costs plus the
// estimates of reservations not settled. A reservation a crash left
// unsettled keeps counting: its call may have been made and billed, and a
// budget must never be passed by what nobody recorded.
func (s *Store) Spent(ctx context.Context, l Limit) (int64, error) {
	return s.spent(ctx, s.DB, l)
}

func (s *Store) spent(ctx context.Context, db dbtx, l Limit) (int64, error) {
	where, arg, err := scopeFilter(l.Scope)
	if err != nil {
		return 0, err
	}
	args := []any{l.Start.UnixMilli(), l.End.UnixMilli()}
	if arg != nil {
		args = append(args, arg)
	}
	var micros int64
	err = db.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(CASE WHEN outcome = 'reserved' THEN estimate_micros ELSE cost_micros END), 0)
		FROM hw_usage WHERE created_at >= ? AND created_at < ?`+where), args...).Scan(&micros)
	if err != nil {
		return 0, fmt.Errorf("spent by %s: %w", l.Scope, err)
	}
	return micros, nil
}

// scopeFilter turns a budget scope into a condition on hw_usage.
func scopeFilter(scope string) (string, any, error) {
	kind, v, _ := strings.Cut(scope, ":")
	switch kind {
	case "global":
		return "", nil, nil
	case "repo":
		return " AND LOWER(repo) = ?", strings.ToLower(v), nil
	case "org":
		return " AND LOWER(owner) = ?", strings.ToLower(v), nil
	case "installation":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", nil, fmt.Errorf("budget scope %q: bad installation id", scope)
		}
		return " AND installation_id = ?", n, nil
	}
	return "", nil, fmt.Errorf("budget scope %q: unknown kind", scope)
}

// UsageOf returns the ledger rows of a delivery, oldest first.
func (s *Store) UsageOf(ctx context.Context, deliveryID int64) ([]UsageRow, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT created_at, model, batch, outcome, estimate_micros, input_tokens,
		output_tokens, cache_write_tokens, cache_read_tokens, cost_micros, latency_ms, request_id
		FROM hw_usage WHERE delivery_id = ? ORDER BY id`), deliveryID)
	if err != nil {
		return nil, fmt.Errorf("usage of delivery %d: %w", deliveryID, err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var u UsageRow
		var at, latency int64
		if err := rows.Scan(&at, &u.Model, &u.Batch, &u.Outcome, &u.EstimateMicros, &u.Input, &u.Output,
			&u.CacheWrite, &u.CacheRead, &u.CostMicros, &latency, &u.RequestID); err != nil {
			return nil, fmt.Errorf("usage of delivery %d: %w", deliveryID, err)
		}
		u.At, u.Latency = time.UnixMilli(at).UTC(), time.Duration(latency)*time.Millisecond
		out = append(out, u)
	}
	return out, rows.Err()
}

// UsageRow is one model call in the ledger.
type UsageRow struct {
	At                                   time.Time
	Model                                string
	Batch                                bool
	Outcome                              string
	EstimateMicros                       int64
	Input, Output, CacheWrite, CacheRead int64
	CostMicros                           int64
	Latency                              time.Duration
	RequestID                            string
}

// RecordAlert notes that threshold (percent) of l was crossed and reports
// whether this is the first time for l's scope and period: the caller
// sends the alert only then, so each fires once across instances.
func (s *Store) RecordAlert(ctx context.Context, l Limit, threshold int, spent int64) (bool, error) {
	res, err := s.DB.ExecContext(ctx, s.q(`INSERT INTO hw_alerts (scope, period, threshold, spent_micros, limit_micros, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, period, threshold) DO NOTHING`),
		l.Scope, l.Period, threshold, spent, l.Micros, s.millis())
	if err != nil {
		return false, fmt.Errorf("record alert: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("record alert: %w", err)
	}
	return n > 0, nil
}

// AlertRow is a recorded budget alert.
type AlertRow struct {
	Scope, Period string
	Threshold     int
	Spent, Limit  int64
	Sent          bool
	Attempts      int
	LastError     string
}

// MarkAlert records an attempt to send an alert: sent, or the error.
func (s *Store) MarkAlert(ctx context.Context, a AlertRow, sendErr error) error {
	sentAt, msg := s.millis(), ""
	if sendErr != nil {
		sentAt, msg = 0, sendErr.Error()
	}
	_, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_alerts SET sent_at = ?, attempts = attempts + 1, last_error = ?
		WHERE scope = ? AND period = ? AND threshold = ?`), sentAt, msg, a.Scope, a.Period, a.Threshold)
	if err != nil {
		return fmt.Errorf("mark alert: %w", err)
	}
	return nil
}

// Alerts lists recorded alerts, newest first; unsent only, when asked,
// with fewer than maxAttempts attempts.
func (s *Store) Alerts(ctx context.Context, unsentOnly bool, maxAttempts int) ([]AlertRow, error) {
	query := `SELECT scope, period, threshold, spent_micros, limit_micros, sent_at, attempts, last_error FROM hw_alerts`
	var args []any
	if unsentOnly {
		query += ` WHERE sent_at = 0 AND attempts < ?`
		args = append(args, maxAttempts)
	}
	rows, err := s.DB.QueryContext(ctx, s.q(query+` ORDER BY created_at DESC`), args...)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	var out []AlertRow
	for rows.Next() {
		var a AlertRow
		var sentAt int64
		if err := rows.Scan(&a.Scope, &a.Period, &a.Threshold, &a.Spent, &a.Limit, &sentAt, &a.Attempts, &a.LastError); err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		a.Sent = sentAt != 0
		out = append(out, a)
	}
	return out, rows.Err()
}

// Defer sets a delivery aside until resume, with the reason.
func (s *Store) Defer(ctx context.Context, id int64, resume time.Time, reason string) error {
	_, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_deliveries SET status = ?, reason = ?, resume_at = ?, updated_at = ? WHERE id = ?`),
		StatusDeferred, reason, resume.UnixMilli(), s.millis(), id)
	if err != nil {
		return fmt.Errorf("defer delivery %d: %w", id, err)
	}
	return nil
}

// ResumeDueTx queues again, in tx, up to limit deferred deliveries whose
// resume time has passed, and returns their ids.
func (s *Store) ResumeDueTx(ctx context.Context, tx *sql.Tx, limit int) ([]int64, error) {
	now := s.millis()
	rows, err := tx.QueryContext(ctx, s.q(`UPDATE hw_deliveries SET status = ?, reason = 'resumed after a budget deferral',
		resume_at = 0, updated_at = ?
		WHERE id IN (SELECT id FROM hw_deliveries WHERE status = ? AND resume_at <= ? ORDER BY id LIMIT ?) AND status = ?
		RETURNING id`), StatusQueued, now, StatusDeferred, now, limit, StatusDeferred)
	if err != nil {
		return nil, fmt.Errorf("resume deferred deliveries: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("resume deferred deliveries: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// TakeWriteSlot finds, for a write under key, the earliest start at or
// after now that keeps every write reserved under key within the limits,
// and reserves it unless it is later than now+within (within 0: always).
// It returns the start and whether it was reserved. On PostgreSQL every
// instance reserves from the same table, so a fleet's writes keep to the
// limits together.
func (s *Store) TakeWriteSlot(ctx context.Context, key string, now time.Time, limits pace.WriteLimits, within time.Duration) (time.Time, bool, error) {
	var next time.Time
	taken := false
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_write_keys (key) VALUES (?) ON CONFLICT (key) DO NOTHING`), key); err != nil {
			return err
		}
		// The row lock that serialises reservations of one key.
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE hw_write_keys SET n = n + 1 WHERE key = ?`), key); err != nil {
			return err
		}
		slots, err := s.writeSlotsTx(ctx, tx, key, now)
		if err != nil {
			return err
		}
		at := earliestSlot(slots, now.UnixMilli(), limits)
		next = time.UnixMilli(at)
		if within > 0 && next.After(now.Add(within)) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_write_slots (key, at) VALUES (?, ?)`), key, at); err != nil {
			return err
		}
		taken = true
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM hw_write_slots WHERE key = ? AND at <= ?`), key, now.Add(-time.Hour).UnixMilli())
		return err
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reserve a write slot: %w", err)
	}
	return next, taken, nil
}

// WriteSlots lists the starts reserved under key from an hour before now
// on, oldest first.
func (s *Store) WriteSlots(ctx context.Context, key string, now time.Time) ([]time.Time, error) {
	var out []time.Time
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		slots, err := s.writeSlotsTx(ctx, tx, key, now)
		for _, at := range slots {
			out = append(out, time.UnixMilli(at))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list write slots: %w", err)
	}
	if out == nil {
		out = []time.Time{}
	}
	return out, nil
}

// writeSlotsTx lists the starts reserved under key in the hour before now
// and after it, in order, in milliseconds.
func (s *Store) writeSlotsTx(ctx context.Context, tx *sql.Tx, key string, now time.Time) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT at FROM hw_write_slots WHERE key = ? AND at > ? ORDER BY at`),
		key, now.Add(-time.Hour).UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var slots []int64
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, err
		}
		slots = append(slots, at)
	}
	return slots, rows.Err()
}

// earliestSlot is the earliest start at or after now (milliseconds) that
// the limits allow after the ordered starts in slots.
func earliestSlot(slots []int64, now int64, limits pace.WriteLimits) int64 {
	at, n := now, len(slots)
	if n > 0 {
		at = max(at, slots[n-1]+limits.Spacing.Milliseconds())
	}
	if limits.PerMinute > 0 && n >= limits.PerMinute {
		at = max(at, slots[n-limits.PerMinute]+time.Minute.Milliseconds()+1)
	}
	if limits.PerHour > 0 && n >= limits.PerHour {
		at = max(at, slots[n-limits.PerHour]+time.Hour.Milliseconds()+1)
	}
	return at
}
