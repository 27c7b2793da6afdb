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
	"math/rand/v2"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

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

// OneAtATime keeps a periodic job from being inserted while a run of it is
// waiting or running: the leader inserts periodic jobs, but any instance
// may run them, and a slow run must not be joined by the next.
var OneAtATime = river.UniqueOpts{ByState: []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled,
}}

// ControlQueue is the River queue of the periodic jobs (dispatch, sweep,
// retention, alerts, batches): workers of their own, so that they never
// wait behind a backlog of deliveries, which they are what moves.
const ControlQueue = "control"

// controlWorkers is how many periodic jobs run at once in a process.
const controlWorkers = 4

// DispatchInterval is how often the leader looks for new deliveries.
const DispatchInterval = time.Second

// Processor handles one delivery. job identifies the job running it (a
// retry of the same job keeps it). GaveUp is told when a failure will not be
// retried (a permanent error, attempts or age used up): a dead letter.
//
// Errors steer the retry: Temporary() false is permanent, and the job goes
// to the dead letters at once; RetryAfterDuration() > 0 (a rate limit, an
// open circuit, a busy thread) snoozes the job without using an attempt;
// RetryDelay() > 0 (an upstream's retry-after on a 529 or 503) is the least
// wait before the next attempt; anything else is retried with capped
// exponential backoff and full jitter.
type Processor interface {
	Process(ctx context.Context, deliveryID int64, job string) error
	GaveUp(ctx context.Context, deliveryID int64, err error)
}

// Options configure a Queue.
type Options struct {
	Workers     int           // concurrent jobs; 0 makes an insert-only queue
	MaxAttempts int           // attempts before a job is discarded (the dead letters)
	MaxAge      time.Duration // a job older than this is not retried again; default 24h
	MaxBackoff  time.Duration // cap of the delay between attempts; default 10m
	JobTimeout  time.Duration // a single attempt is cancelled after this
	RescueAfter time.Duration // a job running this long is taken as crashed and retried
	KeepJobs    time.Duration // how long completed jobs are kept; default River's (24h)
	KeepDead    time.Duration // how long the jobs of dead letters (cancelled, discarded) are kept; default River's
	Processor   Processor
	Logger      *slog.Logger
	// Periodic are more periodic jobs to run on the leader, with their
	// workers registered by Register.
	Periodic []*river.PeriodicJob
	Register func(*river.Workers)
	// Priority ranks a delivery's job by its event and action, 1 (first)
	// to 4 (last), as River fetches them; nil gives every job 1.
	Priority func(event, action string) int
}

// Queue is the River client bound to the store.
type Queue struct {
	store  *store.Store
	client *river.Client[*sql.Tx]
	opts   Options
}

// driver is River's driver for the store's engine. Both work on
// database/sql, so a job insert can join any of our transactions.
func driver(st *store.Store) riverdriver.Driver[*sql.Tx] {
	if st.Dialect == store.Postgres {
		return riverdatabasesql.New(st.DB)
	}
	return riversqlite.New(st.DB)
}

// Migrate applies River's migrations.
func Migrate(ctx context.Context, st *store.Store) error {
	m, err := rivermigrate.New(driver(st), nil)
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
	if opts.MaxAge <= 0 {
		opts.MaxAge = 24 * time.Hour
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Minute
	}
	policy := &retryPolicy{base: time.Second, max: opts.MaxBackoff}
	cfg := &river.Config{
		Logger:      opts.Logger,
		MaxAttempts: opts.MaxAttempts,
		// Job completions are batched by River; polling fast keeps the
		// latency from commit to work low on SQLite, which has no LISTEN.
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 200 * time.Millisecond,
		RetryPolicy:       policy,
	}
	if opts.Workers > 0 {
		workers := river.NewWorkers()
		river.AddWorker(workers, &worker{proc: opts.Processor, maxAge: opts.MaxAge, policy: policy, now: time.Now})
		river.AddWorker(workers, &dispatcher{store: st, priority: opts.Priority})
		if opts.Register != nil {
			opts.Register(workers)
		}
		cfg.PeriodicJobs = append([]*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(DispatchInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				// Not OneAtATime: a run whose completion an outage swallowed
				// stays "running" until rescued, and would stop every
				// dispatch until then. Overlapping runs are safe: a claim
				// re-checks its rows.
				return DispatchArgs{}, &river.InsertOpts{MaxAttempts: 3, Queue: ControlQueue}
			}, &river.PeriodicJobOpts{ID: "dispatch_deliveries", RunOnStart: true})}, opts.Periodic...)
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.Workers}, ControlQueue: {MaxWorkers: controlWorkers}}
		cfg.JobTimeout = opts.JobTimeout
		cfg.RescueStuckJobsAfter = opts.RescueAfter
		cfg.CompletedJobRetentionPeriod = opts.KeepJobs
		cfg.CancelledJobRetentionPeriod = opts.KeepDead
		cfg.DiscardedJobRetentionPeriod = opts.KeepDead
	}
	client, err := river.NewClient(driver(st), cfg)
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
	inserted, err := q.store.PersistDeliveries(ctx, batch)
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
	proc   Processor
	maxAge time.Duration
	policy *retryPolicy
	now    func() time.Time
}

// Work maps the processor's error onto River: nil completes, a permanent
// error cancels (a dead letter at once), a wait snoozes, anything else is
// retried by the retry policy until attempts or age run out. A wait is not
// a failure: it never uses an attempt and never ages a job out, however
// long the backlog it waits in.
func (w *worker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	err := w.proc.Process(ctx, job.Args.DeliveryID, fmt.Sprintf("job-%d", job.ID))
	if err == nil {
		return nil
	}
	age := w.now().Sub(job.CreatedAt)
	var temp interface{ Temporary() bool }
	var result error
	switch {
	case errors.As(err, &temp) && !temp.Temporary():
		result = river.JobCancel(err)
	case ctx.Err() == nil && RetryAfter(err) > 0:
		return river.JobSnooze(RetryAfter(err))
	case errors.Is(ctx.Err(), context.Canceled):
		// The client is stopping: the job was interrupted, not failed.
		// It runs again at once on the next start.
		return river.JobSnooze(0)
	case age >= w.maxAge:
		err = fmt.Errorf("gave up after %s (queue.max_age %s): %w", age.Round(time.Second), w.maxAge, err)
		result = river.JobCancel(err)
	case job.Attempt < job.MaxAttempts:
		// A timeout counts: an attempt that ran queue.job_timeout without
		// an answer is a failure, as waits end in a snooze well before it.
		if d := RetryDelay(err); d > 0 && ctx.Err() == nil {
			w.policy.atLeast(job.ID, w.now().Add(d))
		}
		return err
	default:
		result = err
	}
	// Cancelled or out of attempts: River will not run it again.
	w.proc.GaveUp(context.WithoutCancel(ctx), job.Args.DeliveryID, err)
	return result
}

// RetryAfter returns how long an error asks the job to wait without using
// an attempt, or 0.
func RetryAfter(err error) time.Duration {
	var ra interface{ RetryAfterDuration() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfterDuration()
	}
	return 0
}

// RetryDelay returns the least wait an upstream asked for before the next
// attempt, or 0.
func RetryDelay(err error) time.Duration {
	var rd interface{ RetryDelay() time.Duration }
	if errors.As(err, &rd) {
		return rd.RetryDelay()
	}
	return 0
}

// retryPolicy is exponential backoff with full jitter: attempt n waits a
// random time in [0, min(max, base·2^(n-1))), so jobs that failed together
// do not come back together; and never less than the upstream asked for.
type retryPolicy struct {
	base, max time.Duration
	// floors holds, per job id, the earliest retry an error asked for; the
	// worker sets it just before River asks NextRetry in the same process.
	floors sync.Map
}

func (p *retryPolicy) atLeast(jobID int64, t time.Time) { p.floors.Store(jobID, t) }

// NextRetry implements river.ClientRetryPolicy.
func (p *retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	now := time.Now()
	next := now.Add(p.delay(len(job.Errors) + 1))
	if v, ok := p.floors.LoadAndDelete(job.ID); ok {
		if floor := v.(time.Time); floor.After(next) {
			next = floor
		}
	}
	return next
}

func (p *retryPolicy) delay(attempt int) time.Duration {
	ceiling := p.max
	if shift := attempt - 1; shift < 40 && p.base<<shift < p.max {
		ceiling = p.base << shift
	}
	return rand.N(ceiling) + time.Millisecond
}

type dispatcher struct {
	river.WorkerDefaults[DispatchArgs]
	store    *store.Store
	priority func(event, action string) int // nil: River's default
	// running lets one run at a time dispatch in this process: a run may
	// rest (see restAfter) for longer than the periodic interval, and runs
	// side by side would each take the whole of dispatchBusyRate.
	running sync.Mutex
}

// Dispatch tuning. A chunk is one transaction: on SQLite it holds the only
// writer, so it is kept short enough that a webhook commit waiting behind
// it still answers within a few milliseconds.
//
// While deliveries are coming in, the webhook goes first: the dispatcher
// enqueues at most dispatchBusyRate deliveries a second, and rests at
// least dispatchYield times as long as each chunk took. The jobs it
// enqueues are what the workers then spend the machine on (several times
// what storing a delivery costs), and during a burst the webhook's senders
// are waiting while the queue is not. What is not dispatched yet stays in
// its row, durable, for a later chunk. Once the oldest waiting delivery is
// dispatchMaxLag old, the dispatcher no longer rests: a long flood shares
// the machine rather than starve the work behind it.
const (
	dispatchChunk    = 100
	dispatchYield    = 3
	dispatchBusyRate = 200
	dispatchMaxLag   = time.Minute
	// dispatchRun bounds one run: the next periodic run goes on from
	// where it stopped, and a run never nears the job timeout.
	dispatchRun = 10 * time.Second
	// ingestRecent is how recently a delivery must have been stored for
	// the webhook to count as busy.
	ingestRecent = 200 * time.Millisecond
)

// opts are the insert options of c's job: its priority.
func (d *dispatcher) opts(c store.Claim) *river.InsertOpts {
	if d.priority == nil {
		return nil
	}
	return &river.InsertOpts{Priority: d.priority(c.Event, c.Action)}
}

// Work claims undispatched deliveries, and deferred deliveries whose budget
// has reset, and enqueues their jobs, a chunk per transaction, until none
// is left.
func (d *dispatcher) Work(ctx context.Context, _ *river.Job[DispatchArgs]) error {
	client, err := river.ClientFromContextSafely[*sql.Tx](ctx)
	if err != nil {
		return err
	}
	if !d.running.TryLock() {
		return nil // the run under way dispatches these too
	}
	defer d.running.Unlock()
	deadline := time.Now().Add(dispatchRun)
	for time.Now().Before(deadline) {
		start := time.Now()
		n, oldest, err := d.chunk(ctx, client)
		if err != nil {
			return fmt.Errorf("dispatch deliveries: %w", err)
		}
		if n == 0 {
			return nil
		}
		if rest := restAfter(n, time.Since(start), time.Since(oldest), d.store.Ingesting(ingestRecent)); rest > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(rest):
			}
		}
	}
	return nil
}

// restAfter is how long the dispatcher rests after dispatching n
// deliveries in took, the oldest of them waiting for lag.
func restAfter(n int, took, lag time.Duration, ingesting bool) time.Duration {
	if !ingesting || lag >= dispatchMaxLag {
		return 0
	}
	paced := time.Duration(n)*time.Second/dispatchBusyRate - took
	return max(dispatchYield*took, paced)
}

// chunk dispatches up to dispatchChunk deliveries in one transaction and
// returns how many, and when the oldest new one was received.
func (d *dispatcher) chunk(ctx context.Context, client *river.Client[*sql.Tx]) (n int, oldest time.Time, err error) {
	oldest = time.Now()
	err = d.store.Tx(ctx, func(tx *sql.Tx) error {
		claims, err := d.store.ClaimUndispatchedTx(ctx, tx, dispatchChunk)
		if err != nil {
			return err
		}
		resumed, err := d.store.ResumeDueTx(ctx, tx, dispatchChunk-len(claims))
		if err != nil {
			return err
		}
		n = len(claims) + len(resumed)
		if n == 0 {
			return nil
		}
		if len(claims) > 0 {
			oldest = claims[0].ReceivedAt
		}
		params := make([]river.InsertManyParams, 0, n)
		for _, c := range claims {
			params = append(params, river.InsertManyParams{Args: ProcessArgs{DeliveryID: c.ID}, InsertOpts: d.opts(c)})
		}
		for _, id := range resumed {
			params = append(params, river.InsertManyParams{Args: ProcessArgs{DeliveryID: id}})
		}
		_, err = client.InsertManyTx(ctx, tx, params)
		return err
	})
	return n, oldest, err
}
