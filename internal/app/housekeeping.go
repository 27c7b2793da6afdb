package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/pipeline"
	"github.com/hookwise/hookwise/internal/store"
)

// RetentionArgs is the periodic job, on the leader, that prunes what
// retention no longer keeps.
type RetentionArgs struct{}

// Kind names the job kind in River's tables.
func (RetentionArgs) Kind() string { return "prune_retention" }

type retentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	store *store.Store
	cfg   config.RetentionConfig
	log   *slog.Logger
}

// Work deletes handled deliveries older than retention.deliveries and
// ledger rows older than retention.ledger.
func (w *retentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	now := time.Now()
	pruned, err := w.store.Prune(ctx, now.Add(-time.Duration(w.cfg.Deliveries)), now.Add(-time.Duration(w.cfg.Ledger)))
	if err != nil {
		return err
	}
	var attrs []any
	for table, n := range pruned {
		if n > 0 {
			attrs = append(attrs, table, n)
		}
	}
	if len(attrs) > 0 {
		w.log.Info("pruned by retention", attrs...)
	}
	return nil
}

// Timeout overrides queue.job_timeout: a first prune of a large database
// deletes in many chunks.
func (w *retentionWorker) Timeout(*river.Job[RetentionArgs]) time.Duration { return 30 * time.Minute }

// AlertsArgs is the periodic job, on the leader, that sends again the
// budget alerts a webhook refused.
type AlertsArgs struct{}

// Kind names the job kind in River's tables.
func (AlertsArgs) Kind() string { return "retry_budget_alerts" }

type alertsWorker struct {
	river.WorkerDefaults[AlertsArgs]
	pipe *pipeline.Pipeline
}

func (w *alertsWorker) Work(ctx context.Context, _ *river.Job[AlertsArgs]) error {
	return w.pipe.RetryAlerts(ctx)
}
