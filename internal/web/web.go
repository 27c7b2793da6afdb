// Package web is hookwise's HTTP surface besides the webhook itself: health
// and readiness probes, Prometheus metrics, and the admin API under /api/v1.
// It mounts the webhook handler it is given but knows nothing about it.
//
// One handler can serve everything, or two can split it: a public one with
// the webhook and /healthz only, and an internal one with the rest (see
// Options). Whatever a stranger can reach costs at most one database check
// a second: /readyz and the database-backed metrics share a short cache.
package web

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"github.com/hookwise/hookwise/internal/pace"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
)

// Store is what the web surface reads from the database.
type Store interface {
	Ready(ctx context.Context) error
	Stats(ctx context.Context) (store.Stats, error)
	ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error)
	// FindDelivery looks a delivery up by id or GUID; a miss wraps store.ErrNotFound.
	FindDelivery(ctx context.Context, ref string) (store.Delivery, error)
	// Analysis returns store.ErrNotFound when the delivery has no stored answer.
	Analysis(ctx context.Context, deliveryID int64) (store.Analysis, error)
	UsageOf(ctx context.Context, deliveryID int64) ([]store.UsageRow, error)
	// Costs sums the usage ledger; an unknown q.By is an error.
	Costs(ctx context.Context, q store.CostQuery) ([]store.CostRow, store.CostRow, error)
}

// Queue is what the web surface asks of the job queue.
type Queue interface {
	Replay(ctx context.Context, deliveryID int64) error
	DeadLetters(ctx context.Context, limit int, before int64) ([]store.Delivery, error)
	DeadLetter(ctx context.Context, ref string) (queue.DeadLetter, error)
	RetryDead(ctx context.Context, deliveryID int64) error
	RetryAllDead(ctx context.Context) (int, error)
	DiscardDead(ctx context.Context, deliveryID int64) error
	// JobCounts maps River job states to how many jobs are in each.
	JobCounts(ctx context.Context) (map[string]int64, error)
}

// Options are NewHandler's dependencies.
type Options struct {
	// Store and Queue back /readyz and the admin API; a nil Store mounts
	// neither.
	Store Store
	Queue Queue
	// Webhook is mounted at POST /webhook and POST /github-webhook (the old
	// service's path). Nil mounts nothing there.
	Webhook http.Handler
	// Gatherer is exposed at GET /metrics. Nil mounts nothing there.
	Gatherer prometheus.Gatherer
	// Backlogs reports the work waiting for each GitHub credential's
	// write window, for GET /api/v1/stats; nil reports none.
	Backlogs func() []pace.Backlog
	// AdminToken guards /api/v1. While it is empty the admin API answers
	// only on a listener bound to loopback (see BaseContext), to requests
	// for a loopback host that came through no proxy.
	AdminToken string
	// Logger gets 5xx causes and failed readiness checks; nil discards them.
	Logger *slog.Logger
}

// readyTimeout bounds a readiness check so that a stuck database makes the
// probe fail rather than hang.
const readyTimeout = 2 * time.Second

// readyFor is how long a readiness check's result answers every probe:
// the check commits a write and syncs it, which anyone who can reach
// /readyz must not be able to make the database do at will.
const readyFor = time.Second

type server struct {
	store    Store
	queue    Queue
	backlogs func() []pace.Backlog
	log      *slog.Logger
	ready    *shared[struct{}]
	// tokenSum is the SHA-256 of the admin token, nil when none is set.
	// Comparing fixed-size digests keeps the comparison constant-time
	// whatever the length of the presented token.
	tokenSum []byte
	// crossOrigin refuses state-changing requests a browser sends from
	// another origin.
	crossOrigin *http.CrossOriginProtection
}

// metricsHandler serves g's metrics in the Prometheus format, logging
// collector errors to log.
func metricsHandler(g prometheus.Gatherer, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// One failing collector (say, job counts while the database is
		// down) must not hide every other metric, and collector errors
		// belong in the log, not in the scrape body.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Prometheus servers scrape one at a time each; more at once is
		// someone else, who gets 503 rather than CPU.
		MaxRequestsInFlight: 4,
	})
}

// NewHandler returns the HTTP surface: /healthz always, and /readyz, the
// admin API, /metrics and the webhook paths where opts provides what they
// need.
func NewHandler(opts Options) http.Handler {
	s := &server{store: opts.Store, queue: opts.Queue, backlogs: opts.Backlogs, log: opts.Logger, crossOrigin: http.NewCrossOriginProtection()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.AdminToken != "" {
		sum := sha256.Sum256([]byte(opts.AdminToken))
		s.tokenSum = sum[:]
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", metricsHandler(opts.Gatherer, s.log))
	}
	if opts.Webhook != nil {
		mux.Handle("POST /webhook", opts.Webhook)
		mux.Handle("POST /github-webhook", opts.Webhook)
	}
	if opts.Store != nil {
		s.ready = newShared(readyFor, readyTimeout, s.checkReady)
		mux.HandleFunc("GET /readyz", s.readyz)
		s.mountAdmin(mux)
	}
	return mux
}

// mountAdmin mounts the admin API.
func (s *server) mountAdmin(mux *http.ServeMux) {
	mux.Handle("GET /api/v1/stats", s.admin(s.stats))
	mux.Handle("GET /api/v1/costs", s.admin(s.costs))
	mux.Handle("GET /api/v1/deliveries", s.admin(s.listDeliveries))
	mux.Handle("GET /api/v1/deliveries/{ref}", s.admin(s.showDelivery))
	mux.Handle("POST /api/v1/deliveries/{ref}/replay", s.admin(s.replayDelivery))
	mux.Handle("GET /api/v1/dlq", s.admin(s.listDead))
	mux.Handle("POST /api/v1/dlq/retry", s.admin(s.retryAllDead))
	mux.Handle("GET /api/v1/dlq/{ref}", s.admin(s.showDead))
	mux.Handle("POST /api/v1/dlq/{ref}/retry", s.admin(s.retryDead))
	mux.Handle("POST /api/v1/dlq/{ref}/discard", s.admin(s.discardDead))
}

// checkReady is one readiness check. A failure is logged here, once per
// check, rather than once per probe that reads it.
func (s *server) checkReady(ctx context.Context) (struct{}, error) {
	err := s.store.Ready(ctx)
	if err != nil {
		s.log.Warn("store not ready", "err", err)
	}
	return struct{}{}, err
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.ready.get(r.Context()); err != nil {
		writeText(w, http.StatusServiceUnavailable, "store not ready")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// apiFunc is an admin API endpoint: it writes its answer or returns an
// error, which admin turns into the answer.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// admin guards fn with the admin checks and turns its error into a JSON
// answer.
func (s *server) admin(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		err := s.notCrossSite(r)
		if err == nil {
			err = s.authorize(r)
		}
		if err == nil {
			err = fn(w, r)
		}
		if err != nil {
			code, msg := s.failure(r, err)
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			writeJSON(w, code, map[string]string{"error": msg})
		}
	})
}

var errNoDelivery = errors.New("delivery not found")

// httpError is a failure whose status and client-safe message are known
// where it happens, such as a bad query parameter. err, if any, is the
// cause and is only logged.
type httpError struct {
	code int
	msg  string
	err  error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func badRequest(msg string) error { return &httpError{code: http.StatusBadRequest, msg: msg} }

// failure is the one place an error becomes an HTTP status and the message
// the client sees. Causes of 5xx answers are logged here and never shown:
// they may name files, hosts or queries.
func (s *server) failure(r *http.Request, err error) (int, string) {
	code, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	switch {
	case errors.As(err, &he):
		code, msg = he.code, he.msg
	case errors.Is(err, errUnauthorized):
		code, msg = http.StatusUnauthorized, "unauthorized"
	case errors.As(err, new(forbiddenError)):
		code, msg = http.StatusForbidden, err.Error()
	case errors.Is(err, errNoDelivery):
		code, msg = http.StatusNotFound, errNoDelivery.Error()
	case errors.Is(err, store.ErrNotFound):
		code, msg = http.StatusNotFound, "not found"
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusServiceUnavailable, "timed out"
	}
	if code >= 500 {
		level := slog.LevelError
		if code == http.StatusServiceUnavailable || r.Context().Err() != nil {
			// Unavailability is reported by /readyz and alerts; a client
			// that went away is not our failure.
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "http request failed",
			"method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	return code, msg
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	// Every value written here is built from plain fields and cannot fail
	// to encode; a write error means the client has gone.
	_ = json.NewEncoder(w).Encode(v)
}
