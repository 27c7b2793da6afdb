package app

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/sweep"
)

// SweepArgs is the periodic job, on the leader, that asks GitHub to
// redeliver what it failed to deliver (see package sweep).
type SweepArgs struct{}

// Kind names the job kind in River's tables.
func (SweepArgs) Kind() string { return "sweep_deliveries" }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	sweep func(ctx context.Context, since time.Time, dryRun bool) ([]sweep.Result, error)
	log   *slog.Logger
}

// Work sweeps the whole window (sweep.window): an event that failed is
// looked at by every sweep until it is delivered or leaves the window, so a
// redelivery that failed too is asked for again.
func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	results, err := w.sweep(ctx, time.Time{}, false)
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			w.log.Warn("redelivery sweep of a hook failed", "hook", r.Hook.String(), "err", r.Err)
		}
	}
	return nil
}

// Timeout overrides queue.job_timeout: a sweep pages through three days of
// deliveries of every hook.
func (w *sweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return 10 * time.Minute }

// sweeper builds the function that runs one sweep with github on st.
func sweeper(cfg config.Config, st *store.Store, github *gh.Client, log *slog.Logger) func(context.Context, time.Time, bool) ([]sweep.Result, error) {
	return func(ctx context.Context, since time.Time, dryRun bool) ([]sweep.Result, error) {
		hooks, err := sweepHooks(ctx, cfg, st, time.Now())
		if err != nil {
			return nil, err
		}
		s := &sweep.Sweeper{GitHub: github, Store: st, Hooks: hooks, Window: time.Duration(cfg.Sweep.Window), Logger: log}
		return s.Sweep(ctx, since, dryRun)
	}
}

// Redeliver runs one sweep now, for `hookwise redeliver`: it asks GitHub to
// redeliver every event since since that hookwise does not hold and that
// no attempt delivered. With dryRun it only reports.
func Redeliver(ctx context.Context, cfg config.Config, st *store.Store, since time.Time, dryRun bool, log *slog.Logger) ([]sweep.Result, error) {
	github, err := newGitHub(cfg, nil)
	if err != nil {
		return nil, err
	}
	return sweeper(cfg, st, github, log)(ctx, since, dryRun)
}

// sweepHooks returns the configured hooks, or else the hooks that delivered
// in the last three days, as far as the credentials can sweep them (a
// token sweeps repository and organisation hooks, a GitHub App its own).
func sweepHooks(ctx context.Context, cfg config.Config, st *store.Store, now time.Time) ([]gh.Hook, error) {
	var hooks []gh.Hook
	for i, s := range cfg.Sweep.Hooks {
		h, err := gh.ParseHook(s)
		if err != nil {
			return nil, fmt.Errorf("sweep.hooks[%d]: %w", i, err)
		}
		hooks = append(hooks, h)
	}
	if len(hooks) > 0 {
		return hooks, nil
	}
	seen, err := st.SeenHooks(ctx, now.Add(-sweep.MaxWindow))
	if err != nil {
		return nil, err
	}
	asApp := cfg.GitHub.AppID != 0
	have := map[string]bool{}
	for _, s := range seen {
		h, ok := hookOf(s)
		if !ok || (h.Kind == "app") != asApp || have[h.String()] {
			continue
		}
		have[h.String()] = true
		hooks = append(hooks, h)
	}
	return hooks, nil
}

// hookOf names the hook a stored delivery came through.
func hookOf(s store.SeenHook) (gh.Hook, bool) {
	id, err := strconv.ParseInt(s.HookID, 10, 64)
	if err != nil || id <= 0 {
		return gh.Hook{}, false
	}
	owner, name, _ := strings.Cut(s.Repo, "/")
	switch s.Target {
	case "repository":
		if owner == "" || name == "" {
			return gh.Hook{}, false
		}
		return gh.Hook{Kind: "repo", Owner: owner, Repo: name, ID: id}, true
	case "organization":
		if owner == "" {
			return gh.Hook{}, false
		}
		return gh.Hook{Kind: "org", Owner: owner, ID: id}, true
	case "integration":
		return gh.Hook{Kind: "app"}, true
	}
	return gh.Hook{}, false
}
