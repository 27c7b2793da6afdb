package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookwise/hookwise/internal/store"
)

// The dead letters are the deliveries whose processing gave up: a permanent
// error (River cancelled the job at once) or attempts or age used up (River
// discarded it). The delivery row is the handle an operator holds, by id or
// GitHub's GUID; River's job rows keep each attempt's error.

// ErrNotDead is returned when retrying or discarding a delivery that is not
// in the dead-letter queue.
var ErrNotDead = errors.New("not in the dead-letter queue")

// DeadLetter is a failed delivery with River's record of its attempts.
type DeadLetter struct {
	Delivery store.Delivery
	Jobs     []DeadJob // newest first
}

// DeadJob is one River job of a dead letter.
type DeadJob struct {
	ID          int64
	State       string // cancelled (permanent error) or discarded (attempts or age used up)
	Attempts    int
	FinalizedAt time.Time
	Errors      []AttemptError
}

// AttemptError is the error one attempt ended with, as River recorded it.
type AttemptError struct {
	At      time.Time
	Attempt int
	Error   string
}

// DeadLetters lists failed deliveries, newest first; before pages on.
func (q *Queue) DeadLetters(ctx context.Context, limit int, before int64) ([]store.Delivery, error) {
	return q.store.ListDeliveries(ctx, store.DeliveryFilter{Status: store.StatusFailed, Limit: limit, Before: before})
}

// DeadLetter returns a delivery, by id or GUID, with its dead jobs.
func (q *Queue) DeadLetter(ctx context.Context, ref string) (DeadLetter, error) {
	d, err := q.store.FindDelivery(ctx, ref)
	if err != nil {
		return DeadLetter{}, err
	}
	where := "json_extract(args, '$.delivery_id') = @id"
	if q.store.Dialect == store.Postgres {
		where = "(args->>'delivery_id')::bigint = @id"
	}
	params := river.NewJobListParams().
		Kinds(ProcessArgs{}.Kind()).
		States(rivertype.JobStateCancelled, rivertype.JobStateDiscarded).
		Where(where, river.NamedArgs{"id": d.ID}).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		First(20)
	res, err := q.client.JobList(ctx, params)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("dead jobs of delivery %d: %w", d.ID, err)
	}
	dl := DeadLetter{Delivery: d}
	for _, j := range res.Jobs {
		dj := DeadJob{ID: j.ID, State: string(j.State), Attempts: j.Attempt}
		if j.FinalizedAt != nil {
			dj.FinalizedAt = *j.FinalizedAt
		}
		for _, e := range j.Errors {
			dj.Errors = append(dj.Errors, AttemptError{At: e.At, Attempt: e.Attempt, Error: e.Error})
		}
		dl.Jobs = append(dl.Jobs, dj)
	}
	return dl, nil
}

// RetryDead queues a dead letter again, from the start, with a new job and
// fresh attempts. It is safe: an answer the model gave before is reused,
// and comments already posted are found by their marker.
func (q *Queue) RetryDead(ctx context.Context, deliveryID int64) error {
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := q.leaveDLQ(ctx, tx, deliveryID, store.StatusQueued, "retried from the dead-letter queue"); err != nil {
			return err
		}
		_, err := q.client.InsertTx(ctx, tx, ProcessArgs{DeliveryID: deliveryID}, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("retry delivery %d: %w", deliveryID, err)
	}
	return nil
}

// RetryAllDead retries every dead letter and returns how many.
func (q *Queue) RetryAllDead(ctx context.Context) (int, error) {
	n := 0
	for {
		page, err := q.DeadLetters(ctx, 500, 0)
		if err != nil || len(page) == 0 {
			return n, err
		}
		for _, d := range page {
			if err := q.RetryDead(ctx, d.ID); err != nil && !errors.Is(err, ErrNotDead) {
				return n, err
			}
			n++
		}
	}
}

// DiscardDead takes a dead letter out of the queue for good; the delivery
// stays stored, with why it failed.
func (q *Queue) DiscardDead(ctx context.Context, deliveryID int64) error {
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		return q.leaveDLQ(ctx, tx, deliveryID, store.StatusDiscarded, "")
	})
	if err != nil {
		return fmt.Errorf("discard delivery %d: %w", deliveryID, err)
	}
	return nil
}

// leaveDLQ moves a failed delivery to status; an empty reason keeps the
// failure's (prefixed), so a discarded letter still says why it failed.
func (q *Queue) leaveDLQ(ctx context.Context, tx *sql.Tx, deliveryID int64, status, reason string) error {
	d, err := q.store.DeliveryStatusTx(ctx, tx, deliveryID)
	if err != nil {
		return err
	}
	if d.Status != store.StatusFailed {
		return fmt.Errorf("delivery %d is %s: %w", deliveryID, d.Status, ErrNotDead)
	}
	if reason == "" {
		reason = "discarded after: " + d.Reason
	}
	return q.store.SetDeliveryStatusTx(ctx, tx, deliveryID, status, reason)
}

// RescueOrphans makes the jobs a crashed predecessor left running available
// again at once, instead of after queue.rescue_after. Only for SQLite, where
// the caller holds the serving lock (store.LockServing): no other process
// can be running them.
func (q *Queue) RescueOrphans(ctx context.Context) (int64, error) {
	if q.store.Dialect != store.SQLite {
		return 0, nil
	}
	res, err := q.store.DB.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running'`)
	if err != nil {
		return 0, fmt.Errorf("rescue orphaned jobs: %w", err)
	}
	return res.RowsAffected()
}
