package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// Paging bounds of GET /api/v1/deliveries.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// stats answers GET /api/v1/stats: the store's totals plus the queue's jobs
// by state.
func (s *server) stats(w http.ResponseWriter, r *http.Request) error {
	st, err := s.store.Stats(r.Context())
	if err != nil {
		return err
	}
	jobs, err := s.queue.JobCounts(r.Context())
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = map[string]int64{}
	}
	writeJSON(w, http.StatusOK, struct {
		store.Stats
		Jobs         map[string]int64 `json:"jobs"`
		WriteBacklog []backlogJSON    `json:"write_backlog"`
	}{st, jobs, s.writeBacklog()})
	return nil
}

// backlogJSON is what waits for one GitHub credential's write window.
type backlogJSON struct {
	Key          string  `json:"key"`
	Waiting      int     `json:"waiting"`
	Writes       int     `json:"writes"`
	DrainSeconds float64 `json:"drain_seconds"`
}

func (s *server) writeBacklog() []backlogJSON {
	out := []backlogJSON{}
	if s.backlogs == nil {
		return out
	}
	for _, b := range s.backlogs() {
		out = append(out, backlogJSON{Key: b.Key, Waiting: b.Claims, Writes: b.Writes, DrainSeconds: b.DrainIn.Seconds()})
	}
	return out
}

// deliveryJSON is a delivery as the admin API shows it: without its
// payload, which can be megabytes.
type deliveryJSON struct {
	ID             int64         `json:"id"`
	HookID         string        `json:"hook_id"`
	GUID           string        `json:"guid"`
	Event          string        `json:"event"`
	Action         string        `json:"action"`
	Repo           string        `json:"repo"`
	InstallationID int64         `json:"installation_id"`
	Sender         string        `json:"sender"`
	ReceivedAt     time.Time     `json:"received_at"`
	Status         string        `json:"status"`
	Reason         string        `json:"reason"`
	UpdatedAt      time.Time     `json:"updated_at"`
	Thread         string        `json:"thread,omitempty"`
	Analysis       *analysisJSON `json:"analysis,omitempty"`
	ModelCalls     []callJSON    `json:"model_calls,omitempty"`
}

// callJSON is one model call of the usage ledger.
type callJSON struct {
	At          time.Time  `json:"at"`
	Model       string     `json:"model"`
	Outcome     string     `json:"outcome"`
	Batch       bool       `json:"batch"`
	EstimateUSD float64    `json:"estimate_usd"`
	CostUSD     float64    `json:"cost_usd"`
	Tokens      tokensJSON `json:"tokens"`
	LatencyMS   int64      `json:"latency_ms"`
	RequestID   string     `json:"request_id,omitempty"`
}

// DeliveryView is a delivery, with its analysis when a is not nil and the
// model calls made for it, as the admin API and `hookwise deliveries show`
// present it.
func DeliveryView(d store.Delivery, a *store.Analysis, calls []store.UsageRow) any {
	out := toDeliveryJSON(d)
	out.Thread = d.Thread
	if a != nil {
		out.Analysis = toAnalysisJSON(*a)
	}
	for _, c := range calls {
		out.ModelCalls = append(out.ModelCalls, callJSON{
			At: c.At, Model: c.Model, Outcome: c.Outcome, Batch: c.Batch,
			EstimateUSD: float64(c.EstimateMicros) / 1e6, CostUSD: float64(c.CostMicros) / 1e6,
			Tokens:    tokensJSON{Input: c.Input, Output: c.Output, CacheRead: c.CacheRead, CacheWrite: c.CacheWrite},
			LatencyMS: c.Latency.Milliseconds(), RequestID: c.RequestID,
		})
	}
	return out
}

func toDeliveryJSON(d store.Delivery) deliveryJSON {
	return deliveryJSON{
		ID: d.ID, HookID: d.HookID, GUID: d.GUID, Event: d.Event, Action: d.Action, Repo: d.Repo,
		InstallationID: d.InstallationID, Sender: d.Sender, ReceivedAt: d.ReceivedAt.UTC(),
		Status: d.Status, Reason: d.Reason, UpdatedAt: d.UpdatedAt.UTC(),
	}
}

type analysisJSON struct {
	Kind      string          `json:"kind"`
	Model     string          `json:"model"`
	Tokens    tokensJSON      `json:"tokens"`
	CostUSD   float64         `json:"cost_usd"`
	LatencyMS int64           `json:"latency_ms"`
	RequestID string          `json:"request_id"`
	CreatedAt time.Time       `json:"created_at"`
	Result    json.RawMessage `json:"result"`
}

type tokensJSON struct {
	Input      int64 `json:"input"`
	Output     int64 `json:"output"`
	CacheRead  int64 `json:"cache_read"`
	CacheWrite int64 `json:"cache_write"`
}

func toAnalysisJSON(a store.Analysis) *analysisJSON {
	result := json.RawMessage(a.Result)
	if !json.Valid(result) {
		// The result is meant to be JSON; should a stored one not be,
		// show it as a string rather than fail the whole answer.
		result, _ = json.Marshal(a.Result)
	}
	return &analysisJSON{
		Kind:  a.Kind,
		Model: a.Model,
		Tokens: tokensJSON{
			Input: a.InputTokens, Output: a.OutputTokens,
			CacheRead: a.CacheReadTokens, CacheWrite: a.CacheWriteTokens,
		},
		CostUSD:   float64(a.CostMicros) / 1e6,
		LatencyMS: a.Latency.Milliseconds(),
		RequestID: a.RequestID,
		CreatedAt: a.CreatedAt.UTC(),
		Result:    result,
	}
}

// deliveryFilter reads the query of GET /api/v1/deliveries.
func deliveryFilter(r *http.Request) (store.DeliveryFilter, error) {
	q := r.URL.Query()
	f := store.DeliveryFilter{Status: q.Get("status"), Repo: q.Get("repo"), Limit: defaultLimit}
	if f.Status != "" && !slices.Contains(store.Statuses(), f.Status) {
		return f, badRequest("status: want one of " + strings.Join(store.Statuses(), ", "))
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, badRequest("before: want a delivery id, a whole number above 0")
		}
		f.Before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return f, badRequest(fmt.Sprintf("limit: want a whole number from 1 to %d", maxLimit))
		}
		f.Limit = n
	}
	return f, nil
}

// listDeliveries answers GET /api/v1/deliveries, newest first. next_before
// is the value of before for the next page, or null when there is none.
func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	f, err := deliveryFilter(r)
	if err != nil {
		return err
	}
	limit := f.Limit
	f.Limit++ // see page
	ds, err := s.store.ListDeliveries(r.Context(), f)
	if err != nil {
		return err
	}
	out, next := page(ds, limit)
	writeJSON(w, http.StatusOK, struct {
		Deliveries []deliveryJSON `json:"deliveries"`
		NextBefore *int64         `json:"next_before"`
	}{out, next})
	return nil
}

// page turns deliveries fetched with one row more than limit into a page
// and the before cursor of the next page (nil when there is none): the
// extra row tells whether another page exists, so that a client paging to
// the end never has to fetch an empty page.
func page(ds []store.Delivery, limit int) ([]deliveryJSON, *int64) {
	var next *int64
	if len(ds) > limit {
		ds = ds[:limit]
		next = &ds[limit-1].ID
	}
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = toDeliveryJSON(d)
	}
	return out, next
}

// findDelivery looks up the delivery named by the path's {ref}, an id or a
// GUID.
func (s *server) findDelivery(r *http.Request) (store.Delivery, error) {
	d, err := s.store.FindDelivery(r.Context(), r.PathValue("ref"))
	if errors.Is(err, store.ErrNotFound) {
		return d, errNoDelivery
	}
	return d, err
}

// showDelivery answers GET /api/v1/deliveries/{ref}: the delivery and, once
// the model has answered, its analysis.
func (s *server) showDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.findDelivery(r)
	if err != nil {
		return err
	}
	var analysis *store.Analysis
	a, err := s.store.Analysis(r.Context(), d.ID)
	switch {
	case err == nil:
		analysis = &a
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	calls, err := s.store.UsageOf(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DeliveryView(d, analysis, calls))
	return nil
}

// replayDelivery answers POST /api/v1/deliveries/{ref}/replay: the delivery
// is handled again from the start, by a worker, after the answer.
func (s *server) replayDelivery(w http.ResponseWriter, r *http.Request) error {
	d, err := s.findDelivery(r)
	if err != nil {
		return err
	}
	if err := s.queue.Replay(r.Context(), d.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
	return nil
}

// defaultCostDays is how far back GET /api/v1/costs looks without since.
const defaultCostDays = 30

// costs answers GET /api/v1/costs: the settled model calls of the usage
// ledger summed by day (the default), repo, model, event or kind, with the
// total. since and until are UTC dates and both are included; since
// defaults to 30 days ago, until to no bound.
func (s *server) costs(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	q := store.CostQuery{By: v.Get("by"), Repo: v.Get("repo")}
	if q.By == "" {
		q.By = "day"
	}
	if err := store.CheckCostGroup(q.By); err != nil {
		return badRequest("by: want day, repo, model, event or kind")
	}
	var err error
	now := time.Now().UTC()
	q.Since = time.Date(now.Year(), now.Month(), now.Day()-defaultCostDays, 0, 0, 0, 0, time.UTC)
	if d := v.Get("since"); d != "" {
		if q.Since, err = time.Parse(time.DateOnly, d); err != nil {
			return badRequest("since: want a date such as 2026-11-01")
		}
	}
	var until *string
	if d := v.Get("until"); d != "" {
		last, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return badRequest("until: want a date such as 2026-11-30")
		}
		if last.Before(q.Since) {
			return badRequest("until: want a date no earlier than since")
		}
		q.Until = last.AddDate(0, 0, 1) // the whole of the last day
		until = &d
	}
	rows, total, err := s.store.Costs(r.Context(), q)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []store.CostRow{}
	}
	writeJSON(w, http.StatusOK, struct {
		By    string          `json:"by"`
		Since string          `json:"since"`
		Until *string         `json:"until"`
		Rows  []store.CostRow `json:"rows"`
		Total store.CostRow   `json:"total"`
	}{q.By, q.Since.Format(time.DateOnly), until, rows, total})
	return nil
}
