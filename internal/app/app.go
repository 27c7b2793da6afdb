// Package app wires hookwise together: the one place that builds every part
// with its dependencies. `hookwise serve`, `hookwise demo` and the
// end-to-end tests all run through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/pace"
	"github.com/hookwise/hookwise/internal/pipeline"
	"github.com/hookwise/hookwise/internal/prompt"
	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/web"
	"github.com/hookwise/hookwise/internal/webhook"
)

// App is a running hookwise: store, queue, workers and HTTP surface.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	Store   *store.Store
	Queue   *queue.Queue
	webhook *webhook.Handler
	// allow is the webhook's source allowlist (nil: none); when it follows
	// GitHub's hook ranges, Run keeps them fresh from github.
	allow   *webhook.Allowlist
	github  *gh.Client
	handler http.Handler
	// internal serves /metrics, /readyz and the admin API on
	// cfg.MetricsListen; nil: handler serves them on the main listener.
	internal http.Handler
	// stopWebhook ends the webhook's committers once, from Run or Close.
	stopWebhook func()
	// drain alerts on GitHub write backlogs; nil when turned off.
	drain *drainAlarm
}

// Open opens and migrates the store and builds every part. Close releases it.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	st, err := OpenStore(ctx, cfg.DatabaseURL)
	if err == nil && st.Dialect == store.Postgres {
		st.DB.SetMaxOpenConns(cfg.DatabaseMaxConnections)
		st.DB.SetMaxIdleConns(cfg.DatabaseMaxConnections)
	}
	if err != nil {
		return nil, err
	}
	a, err := build(cfg, st, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	return a, nil
}

// OpenStore opens the database and applies our and River's migrations.
func OpenStore(ctx context.Context, url string) (*store.Store, error) {
	st, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	// Instances of a fleet start together: one migrates, the others wait
	// and then find nothing left to do.
	err = st.MigrationLock(ctx, func() error {
		if err := st.Migrate(ctx); err != nil {
			return err
		}
		return queue.Migrate(ctx, st)
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// writeAhead is how soon the writes of an answer must be able to start
// before the model is asked for it: what is paid for is posted within it.
const writeAhead = 30 * time.Second

// snoozeAfter is the longest a job holds its worker waiting for an
// upstream's allowance; a longer wait snoozes the job, well before
// queue.job_timeout would end it as a failed attempt.
func snoozeAfter(cfg config.Config) time.Duration {
	return min(writeAhead, time.Duration(cfg.Queue.JobTimeout)/4)
}

// OpenStoreAsIs opens the database for a command other than serve and
// migrate: it changes nothing (not even creating a missing SQLite file),
// and fails, saying what to run, when the schema is behind this hookwise
// or ahead of what it can read.
func OpenStoreAsIs(ctx context.Context, url string) (*store.Store, error) {
	if !store.IsPostgres(url) {
		if _, err := os.Stat(url); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("database: no SQLite file at %s: run `hookwise migrate` (or start `hookwise serve`) to create it", url)
		}
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := st.CheckSchema(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func build(cfg config.Config, st *store.Store, log *slog.Logger) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ghPace, github, model, err := upstreams(cfg, st, reg)
	if err != nil {
		return nil, err
	}
	prompts, err := prompt.New(cfg.PromptsDir, log)
	if err != nil {
		return nil, err
	}
	popts := PipelineOptions(cfg)
	popts.Gate, popts.WriteAhead = ghPace, writeAhead
	pipe := pipeline.New(st, github, model, prompts, popts, pipeline.NewMetrics(reg), log)
	q, err := newQueue(cfg, st, pipe, github, log)
	if err != nil {
		return nil, err
	}
	reg.MustRegister(web.JobsCollector(q), web.BudgetCollector(st, cost.NewBudgets(cfg.Budget), time.Now))
	ingest := webhookOptions(cfg, st, q, reg, log)
	wh := webhook.New(ingest)
	a := &App{cfg: cfg, log: log, Store: st, Queue: q, webhook: wh, allow: ingest.Allow, github: github,
		stopWebhook: sync.OnceFunc(wh.Close), drain: newDrainAlarm(cfg, ghPace, log)}
	opts := web.Options{
		Store: st, Queue: q, Webhook: wh, Gatherer: reg, Backlogs: ghPace.Backlogs,
		AdminToken: cfg.AdminToken.Value(), Logger: log,
	}
	a.handler = web.NewHandler(opts)
	if cfg.MetricsListen != "" {
		// The port that faces the internet gets the webhook and /healthz:
		// nothing there makes the database work for a stranger.
		a.handler = web.NewHandler(web.Options{Webhook: wh, Logger: log})
		opts.Webhook = nil
		a.internal = web.NewHandler(opts)
	}
	return a, nil
}

// upstreams builds the paced clients of GitHub and Claude. Pacing wraps
// the instrumented transport: waits are not counted as upstream latency,
// and every request that is sent is.
func upstreams(cfg config.Config, st *store.Store, reg prometheus.Registerer) (*pace.Transport, *gh.Client, *claude.Client, error) {
	ghOpts := pace.Options{
		Upstream:        pace.GitHub,
		WritesPerMinute: cfg.GitHub.WritesPerMinute,
		WritesPerHour:   cfg.GitHub.WritesPerHour,
		WriteSpacing:    time.Minute / time.Duration(cfg.GitHub.WritesPerMinute),
		MaxConcurrent:   cfg.GitHub.MaxConcurrency,
		SnoozeAfter:     snoozeAfter(cfg),
		Registerer:      reg,
	}
	if st.Dialect == store.Postgres {
		// Several instances share one token's secondary limits: they
		// reserve their writes in the database. (Claude's limits need no
		// such help: every instance learns them from the API's headers,
		// which count the whole organisation's use.)
		ghOpts.Shared = st
	}
	ghPace := pace.NewTransport(instrumented(reg, "github"), ghOpts)
	github, err := newGitHub(cfg, &http.Client{Transport: ghPace, Timeout: 5 * time.Minute})
	if err != nil {
		return nil, nil, nil, err
	}
	model := claude.New(claude.Options{
		HTTPClient: &http.Client{Timeout: 5 * time.Minute, Transport: pace.NewTransport(instrumented(reg, "anthropic"),
			pace.Options{Upstream: pace.Anthropic, SnoozeAfter: snoozeAfter(cfg), Registerer: reg})},
		APIKey:         cfg.Anthropic.APIKey.Value(),
		BaseURL:        cfg.Anthropic.BaseURL,
		MaxConcurrency: cfg.Anthropic.MaxConcurrency,
		SlotWait:       snoozeAfter(cfg),
	})
	return ghPace, github, model, nil
}

// newQueue builds the River client with the pipeline as its processor and
// the leader's periodic jobs.
func newQueue(cfg config.Config, st *store.Store, pipe *pipeline.Pipeline, github *gh.Client, log *slog.Logger) (*queue.Queue, error) {
	return queue.New(st, queue.Options{
		Workers:     cfg.Queue.Workers,
		MaxAttempts: cfg.Queue.MaxAttempts,
		MaxAge:      time.Duration(cfg.Queue.MaxAge),
		MaxBackoff:  time.Duration(cfg.Queue.MaxBackoff),
		JobTimeout:  time.Duration(cfg.Queue.JobTimeout),
		RescueAfter: time.Duration(cfg.Queue.RescueAfter),
		KeepJobs:    time.Duration(cfg.Retention.Jobs),
		KeepDead:    time.Duration(cfg.Retention.Deliveries),
		Processor:   pipe,
		Logger:      log,
		Periodic:    periodic(cfg),
		Priority:    cfg.Queue.Priorities.For,
		Register: func(w *river.Workers) {
			river.AddWorker(w, &sweepWorker{sweep: sweeper(cfg, st, github, log), log: log})
			river.AddWorker(w, &retentionWorker{store: st, cfg: cfg.Retention, log: log})
			river.AddWorker(w, &alertsWorker{pipe: pipe})
			river.AddWorker(w, newBatchWorker(cfg, pipe)) // the Message Batches API (batches.go)
		},
	})
}

// webhookOptions configures ingest: the secrets, where deliveries are
// stored, and the guards of the front door.
func webhookOptions(cfg config.Config, st *store.Store, q *queue.Queue, reg prometheus.Registerer, log *slog.Logger) webhook.Options {
	var secrets [][]byte
	for _, s := range cfg.GitHub.WebhookSecrets {
		secrets = append(secrets, []byte(s.Value()))
	}
	ingest := webhook.Options{Secrets: secrets, Persister: q, Logger: log, Registerer: reg}
	ingest.Committers, ingest.DurableCommits = st.CommitProfile()
	guardWebhook(&ingest, cfg.Webhook)
	return ingest
}

// PipelineOptions are what the pipeline works by, from cfg: the one place
// that maps the configuration onto it. The write gate is the caller's to
// add.
func PipelineOptions(cfg config.Config) pipeline.Options {
	prices := make(map[string]cost.Price, len(cfg.Anthropic.Prices))
	for k, v := range cfg.Anthropic.Prices {
		prices[k] = cost.Price{Input: v.Input, Output: v.Output, CacheWrite: v.CacheWrite, CacheRead: v.CacheRead}
	}
	opts := pipeline.Options{
		Settings:      cfg.For,
		AllowedOwners: cfg.GitHub.AllowedOwners, AllowedInstallations: cfg.GitHub.AllowedInstallations,
		BotLogins: cfg.GitHub.BotLogins,
		MaxTokens: cfg.Anthropic.MaxTokens,
		Prices:    cost.NewTable(prices), Budgets: cost.NewBudgets(cfg.Budget),
		OnLimit: cfg.Budget.OnLimit, FallbackModel: cfg.Budget.FallbackModel,
		LeaseTTL:   time.Duration(cfg.Queue.JobTimeout) + time.Minute,
		Priorities: cfg.Queue.Priorities,
	}
	if n := notifier(cfg); n != nil {
		opts.Alerter = n
	}
	return opts
}

// notifier sends alerts to budget.alert_webhook; nil when none is set.
func notifier(cfg config.Config) *cost.Notifier {
	if cfg.Budget.AlertWebhook == "" {
		return nil
	}
	return &cost.Notifier{URL: cfg.Budget.AlertWebhook.Value(), Format: cfg.Budget.AlertFormat}
}

// newDrainAlarm watches the write backlogs of ghPace, or returns nil when
// queue.drain_alert is 0.
func newDrainAlarm(cfg config.Config, ghPace *pace.Transport, log *slog.Logger) *drainAlarm {
	if cfg.Queue.DrainAlert <= 0 {
		return nil
	}
	threshold := time.Duration(cfg.Queue.DrainAlert)
	a := &drainAlarm{threshold: threshold, every: min(max(threshold/20, time.Second), drainCheckEvery),
		backlogs: ghPace.Backlogs, log: log, now: time.Now, since: map[string]time.Time{}}
	if n := notifier(cfg); n != nil {
		a.notify = n.Notify
	}
	return a
}

// newGitHub builds the GitHub client from the configuration.
func newGitHub(cfg config.Config, hc *http.Client) (*gh.Client, error) {
	github, err := gh.New(gh.Options{
		HTTPClient: hc,
		BaseURL:    cfg.GitHub.APIURL,
		Token:      cfg.GitHub.Token.Value(),
		AppID:      cfg.GitHub.AppID,
		PrivateKey: []byte(cfg.GitHub.AppPrivateKey.Value()),
		UserAgent:  "hookwise",
	})
	if err != nil {
		return nil, fmt.Errorf("github: %w", err)
	}
	return github, nil
}

// periodic lists the leader's periodic jobs besides the queue's own.
func periodic(cfg config.Config) []*river.PeriodicJob {
	once := func(args river.JobArgs) func() (river.JobArgs, *river.InsertOpts) {
		return func() (river.JobArgs, *river.InsertOpts) {
			return args, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: queue.OneAtATime, Queue: queue.ControlQueue}
		}
	}
	jobs := []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Minute), once(AlertsArgs{}),
		&river.PeriodicJobOpts{ID: "retry_budget_alerts"}), batchPeriodic(cfg)}
	if cfg.Sweep.Interval > 0 {
		// The first sweep runs at start: what GitHub failed to deliver
		// while hookwise was down is asked for again at once.
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(time.Duration(cfg.Sweep.Interval)), once(SweepArgs{}),
			&river.PeriodicJobOpts{ID: "sweep_deliveries", RunOnStart: true}))
	}
	if cfg.Retention.Interval > 0 {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(time.Duration(cfg.Retention.Interval)), once(RetentionArgs{}),
			&river.PeriodicJobOpts{ID: "prune_retention", RunOnStart: true}))
	}
	return jobs
}

// Handler is the HTTP surface of the main listener: webhook and health, and
// metrics, readiness and the admin API unless metrics_listen moves them.
func (a *App) Handler() http.Handler { return a.handler }

// Run works jobs and serves HTTP on ln until ctx ends, then shuts down
// gracefully: stop accepting, finish in-flight requests and commits, let
// running jobs finish within the shutdown timeout. Unfinished jobs are
// picked up again on the next start.
func (a *App) Run(ctx context.Context, ln net.Listener) error {
	unlock, err := a.Store.LockServing()
	if err != nil {
		return err
	}
	defer unlock()
	// Jobs left running by a process that died are ours to take back now;
	// River's rescuer would wait queue.rescue_after.
	if n, err := a.Queue.RescueOrphans(ctx); err != nil {
		return err
	} else if n > 0 {
		a.log.Info("rescued jobs left running by the previous process", "jobs", n)
	}
	var metricsLn net.Listener
	if a.internal != nil {
		if metricsLn, err = net.Listen("tcp", a.cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
	}
	if err := a.Queue.Start(ctx); err != nil {
		if metricsLn != nil {
			metricsLn.Close()
		}
		return fmt.Errorf("start queue: %w", err)
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			IdleTimeout:       120 * time.Second,
			// The admin API needs to know whether its listener is on
			// loopback.
			BaseContext: web.BaseContext,
		}
	}
	if a.allow != nil && a.allow.FollowsGitHub() {
		go a.allow.Follow(ctx, a.github, time.Duration(a.cfg.Webhook.HookRangesRefresh), a.log)
	}
	if a.drain != nil {
		go a.drain.run(ctx)
	}
	srv := newServer(a.handler)
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info("hookwise serving", "addr", ln.Addr().String())
	var metricsSrv *http.Server
	if metricsLn != nil {
		metricsSrv = newServer(a.internal)
		go func() { served <- metricsSrv.Serve(metricsLn) }()
		a.log.Info("metrics, readiness and admin API serving", "addr", metricsLn.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("serve: %w", err)
	}
	a.shutdown(ctx, srv, metricsSrv)
	return runErr
}

// shutdown ends serving gracefully: the listeners first, then the
// webhook's committers, then the running jobs, each given
// shutdown_timeout.
func (a *App) shutdown(ctx context.Context, srv, metricsSrv *http.Server) {
	timeout := time.Duration(a.cfg.ShutdownTimeout)
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	a.log.Info("shutting down", "timeout", timeout.String())
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Warn("http shutdown", "err", err)
	}
	if metricsSrv != nil {
		// The webhook's shutdown may have used up the timeout: a scrape in
		// flight is not worth waiting for then.
		if err := metricsSrv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
			metricsSrv.Close()
		}
	}
	a.stopWebhook()
	// The queue gets its own timeout: the HTTP shutdown may have used up
	// the first one, and running jobs deserve their chance to finish.
	jobs, cancelJobs := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancelJobs()
	if err := a.Queue.Stop(jobs); err != nil {
		a.log.Warn("queue stop", "err", err)
	}
}

// Close stops the webhook's committers and releases the store.
func (a *App) Close() error {
	a.stopWebhook()
	return a.Store.Close()
}

// instrumented is an HTTP transport whose requests to an upstream are
// counted by method and status code and timed.
func instrumented(reg prometheus.Registerer, upstream string) http.RoundTripper {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "hookwise_upstream_requests_total",
		Help:        "HTTP requests to an upstream API by method and status code.",
		ConstLabels: prometheus.Labels{"upstream": upstream},
	}, []string{"method", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "hookwise_upstream_request_seconds",
		Help:        "Latency of HTTP requests to an upstream API.",
		ConstLabels: prometheus.Labels{"upstream": upstream},
		Buckets:     prometheus.ExponentialBuckets(0.01, 2, 12),
	}, []string{"method"})
	reg.MustRegister(requests, latency)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Workers call one host concurrently; keep their connections alive.
	transport.MaxIdleConnsPerHost = 64
	rt := promhttp.InstrumentRoundTripperCounter(requests,
		promhttp.InstrumentRoundTripperDuration(latency, transport))
	return rt
}
