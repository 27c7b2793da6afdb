// Package queue runs hookwise's jobs on River, in the same database as the
// deliveries, so that storing a delivery and enqueueing its processing is
// one commit.
package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/hookwise/hookwise/internal/store"
)

// ProcessArgs is the job that handles one stored delivery.
type ProcessArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind names the job kind in River's tables.
func (ProcessArgs) Kind() string { return "process_delivery" }

// DispatchArgs is the periodic job that enqueues the processing job of every
// delivery the ingest committed. The delivery row is the durable hand-off
// (an outbox): the ingest commit writes no River row, and a delivery can
// never be left without its job.
type DispatchArgs struct{}

// Kind names the job kind in River's tables.
func (DispatchArgs) Kind() string { return "dispatch_deliveries" }

// DispatchInterval is how often the leader looks for new deliveries.
const DispatchInterval = time.Second

// Processor handles one delivery. job identifies the job running it (a
// retry of the same job keeps it). Errors that carry Temporary() false are
// permanent: the job is not retried. Errors that carry a RetryAfter
// (rate limits, a busy thread) snooze the job without using an attempt.
type Processor interface {
	Process(ctx context.Context, deliveryID int64, job string, lastAttempt bool) error
}

// Options configure a Queue.
type Options struct {
	Workers     int           // concurrent jobs; 0 makes an insert-only queue
	MaxAttempts int           // attempts before a job is discarded (the dead letters)
	JobTimeout  time.Duration // a single attempt is cancelled after this
	RescueAfter time.Duration // a job running this long is taken as crashed and retried
	Processor   Processor
	Logger      *slog.Logger
}

// Queue is the River client bound to the store.
type Queue struct {
	store  *store.Store
	client *river.Client[*sql.Tx]
	opts   Options
}

// Migrate applies River's migrations.
func Migrate(ctx context.Context, st *store.Store) error {
	m, err := rivermigrate.New(riversqlite.New(st.DB), nil)
	if err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}

// New builds the River client. It does not start working jobs.
func New(st *store.Store, opts Options) (*Queue, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 10
	}
	cfg := &river.Config{
		Logger:      opts.Logger,
		MaxAttempts: opts.MaxAttempts,
		// Job completions are batched by River; polling fast keeps the
		// latency from commit to work low on SQLite, which has no LISTEN.
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 200 * time.Millisecond,
	}
	if opts.Workers > 0 {
		workers := river.NewWorkers()
		river.AddWorker(workers, &worker{proc: opts.Processor})
		river.AddWorker(workers, &dispatcher{store: st})
		cfg.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(DispatchInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				return DispatchArgs{}, &river.InsertOpts{MaxAttempts: 3}
			}, &river.PeriodicJobOpts{ID: "dispatch_deliveries", RunOnStart: true})}
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}}
		cfg.JobTimeout = opts.JobTimeout
		cfg.RescueStuckJobsAfter = opts.RescueAfter
	}
	client, err := river.NewClient(riversqlite.New(st.DB), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return &Queue{store: st, client: client, opts: opts}, nil
}

// Start begins working jobs; Stop ends it.
func (q *Queue) Start(ctx context.Context) error { return q.client.Start(ctx) }

// Stop waits for running jobs until ctx ends, then cancels them; cancelled
// jobs are retried on the next start.
func (q *Queue) Stop(ctx context.Context) error {
	err := q.client.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		hard, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return q.client.StopAndCancel(hard)
	}
	return err
}

// Persist stores a batch of deliveries in one transaction; the dispatcher
// enqueues their processing. It implements webhook.Persister.
func (q *Queue) Persist(ctx context.Context, batch []store.Delivery) ([]bool, error) {
	inserted := make([]bool, len(batch))
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		ids, err := q.store.InsertDeliveries(ctx, tx, batch)
		for i, id := range ids {
			inserted[i] = id != 0
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist %d deliveries: %w", len(batch), err)
	}
	return inserted, nil
}

// Sync returns once every delivery Persist committed is on disk.
func (q *Queue) Sync(ctx context.Context) error { return q.store.Sync(ctx) }

// Replay queues a stored delivery to be handled again from the start: its
// stored analysis is forgotten so the model is asked afresh, and the comment
// it wrote before is updated rather than posted twice.
func (q *Queue) Replay(ctx context.Context, deliveryID int64) error {
	err := q.store.Tx(ctx, func(tx *sql.Tx) error {
		if err := q.store.ForgetAnalysisTx(ctx, tx, deliveryID); err != nil {
			return err
		}
		if err := q.store.ReleaseWritesTx(ctx, tx, deliveryID); err != nil {
			return err
		}
		if err := q.store.SetDeliveryStatusTx(ctx, tx, deliveryID, store.StatusQueued, "replayed"); err != nil {
			return err
		}
		_, err := q.client.InsertTx(ctx, tx, ProcessArgs{DeliveryID: deliveryID}, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("replay delivery %d: %w", deliveryID, err)
	}
	return nil
}

// JobCounts returns how many jobs are in each River state.
func (q *Queue) JobCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := q.store.DB.QueryContext(ctx, `SELECT state, COUNT(*) FROM river_job GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("job counts: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("job counts: %w", err)
		}
		out[state] = n
	}
	return out, rows.Err()
}

type worker struct {
	river.WorkerDefaults[ProcessArgs]
	proc Processor
}

// Work maps the processor's error onto River: nil completes, a permanent
// error cancels (no retry), a rate limit snoozes, anything else retries with
// River's backoff.
func (w *worker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	last := job.Attempt >= job.MaxAttempts
	err := w.proc.Process(ctx, job.Args.DeliveryID, fmt.Sprintf("job-%d", job.ID), last)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Stopped or timed out, not failed: retry it.
		return err
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && !temp.Temporary() {
		return river.JobCancel(err)
	}
	if d := RetryAfter(err); d > 0 {
		return river.JobSnooze(d)
	}
	return err
}

// RetryAfter returns how long an error asks the caller to wait, or 0.
func RetryAfter(err error) time.Duration {
	var ra interface{ RetryAfterDuration() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfterDuration()
	}
	return 0
}

type dispatcher struct {
	river.WorkerDefaults[DispatchArgs]
	store *store.Store
}

// Work claims undispatched deliveries and enqueues their jobs, a chunk per
// transaction, until none is left.
func (d *dispatcher) Work(ctx context.Context, _ *river.Job[DispatchArgs]) error {
	client, err := river.ClientFromContextSafely[*sql.Tx](ctx)
	if err != nil {
		return err
	}
	for {
		n := 0
		err := d.store.Tx(ctx, func(tx *sql.Tx) error {
			ids, err := d.store.ClaimUndispatchedTx(ctx, tx, 500)
			if err != nil || len(ids) == 0 {
				return err
			}
			n = len(ids)
			params := make([]river.InsertManyParams, len(ids))
			for i, id := range ids {
				params[i] = river.InsertManyParams{Args: ProcessArgs{DeliveryID: id}}
			}
			_, err = client.InsertManyTx(ctx, tx, params)
			return err
		})
		if err != nil {
			return fmt.Errorf("dispatch deliveries: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}
