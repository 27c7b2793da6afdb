package app

import (
	"context"
	"database/sql"
	"time"

	"github.com/riverqueue/river"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/pipeline"
	"github.com/hookwise/hookwise/internal/queue"
)

// BatchArgs is the periodic job, on the leader, that submits the requests
// waiting for the Message Batches API and collects the results of the
// batches that ended (see pipeline.RunBatches).
type BatchArgs struct{}

// Kind names the job kind in River's tables.
func (BatchArgs) Kind() string { return "message_batches" }

type batchWorker struct {
	river.WorkerDefaults[BatchArgs]
	pipe    *pipeline.Pipeline
	timeout time.Duration
}

// Work runs one round; each delivery with a result is queued again in the
// transaction that records the result.
func (w *batchWorker) Work(ctx context.Context, _ *river.Job[BatchArgs]) error {
	client, err := river.ClientFromContextSafely[*sql.Tx](ctx)
	if err != nil {
		return err
	}
	return w.pipe.RunBatches(ctx, func(ctx context.Context, tx *sql.Tx, deliveryID int64) error {
		_, err := client.InsertTx(ctx, tx, queue.ProcessArgs{DeliveryID: deliveryID}, nil)
		return err
	})
}

// Timeout overrides queue.job_timeout: a round may upload a batch of up to
// 256 MB and read the results of many. It stays under queue.rescue_after,
// so that River never takes a round still running for a crashed one.
func (w *batchWorker) Timeout(*river.Job[BatchArgs]) time.Duration { return w.timeout }

func newBatchWorker(cfg config.Config, pipe *pipeline.Pipeline) *batchWorker {
	return &batchWorker{pipe: pipe, timeout: time.Duration(cfg.Queue.RescueAfter) * 9 / 10}
}

// batchPeriodic runs the batch job every anthropic.batch_interval, and at
// start: batches that ended while hookwise was down are collected at once.
// One round runs at a time: a round slower than the interval is not joined
// by the next, which would submit the same requests again.
func batchPeriodic(cfg config.Config) *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(time.Duration(cfg.Anthropic.BatchInterval)),
		func() (river.JobArgs, *river.InsertOpts) {
			return BatchArgs{}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: queue.OneAtATime, Queue: queue.ControlQueue}
		}, &river.PeriodicJobOpts{ID: "message_batches", RunOnStart: true})
}
