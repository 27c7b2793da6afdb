package app_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// With GitHub's hourly write allowance far below the backlog, hookwise
// posts what the allowance permits and pays the model for little more;
// the rest waits through several job timeouts without using an attempt,
// without a dead letter, visibly, and the drain-time alert fires.
func TestBacklogBeyondTheAllowanceWaits(t *testing.T) {
	t.Parallel()
	receiver := &fake.AlertWebhook{}
	asrv := httptest.NewServer(receiver)
	t.Cleanup(asrv.Close)
	const allowance, n = 8, 40
	h := start(t, 0, func(c *config.Config) {
		c.GitHub.WritesPerHour = allowance
		c.Queue.JobTimeout = config.Duration(2 * time.Second)
		c.Queue.RescueAfter = config.Duration(time.Minute)
		c.Queue.DrainAlert = config.Duration(20 * time.Second)
		c.Budget.AlertWebhook = config.Secret(asrv.URL)
	})
	sendIssues(t, h.endpoint, n)
	// At least five job timeouts, and then until the allowance is posted
	// and the rest waits (a busy machine may take longer to get there).
	began := time.Now()
	var by map[string]int
	comments := 0
	for {
		time.Sleep(500 * time.Millisecond)
		by, comments = h.statuses(t), 0
		for i := 1; i <= n; i++ {
			comments += len(h.github.Comments("acme/app", i))
		}
		settled := comments == allowance && by[store.StatusDone] == allowance && by[store.StatusWaiting] == n-allowance
		if time.Since(began) > 10*time.Second && settled || time.Since(began) > time.Minute {
			break
		}
	}
	if comments != allowance || by[store.StatusDone] != allowance || by[store.StatusWaiting] != n-allowance {
		t.Errorf("%d comments, deliveries by status %v; want %d done and commented, %d waiting", comments, by, allowance, n-allowance)
	}
	if calls := h.model.Calls(); calls > comments+2 {
		t.Errorf("%d model calls for %d comments: paid for analyses that cannot be posted", calls, comments)
	}
	var failed, attempts int
	if err := h.app.Store.DB.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery' AND state IN ('discarded', 'cancelled')`).Scan(&failed); err != nil {
		t.Fatal(err)
	}
	if err := h.app.Store.DB.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery' AND json_array_length(errors) > 0`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if failed != 0 || attempts != 0 {
		t.Errorf("%d jobs discarded or cancelled, %d with a failed attempt; want none: waiting is not failing", failed, attempts)
	}

	var stats struct {
		WriteBacklog []struct {
			Key          string  `json:"key"`
			Waiting      int     `json:"waiting"`
			DrainSeconds float64 `json:"drain_seconds"`
		} `json:"write_backlog"`
	}
	if err := json.Unmarshal([]byte(h.get(t, "/api/v1/stats")), &stats); err != nil {
		t.Fatal(err)
	}
	if b := stats.WriteBacklog; len(b) != 1 || b[0].Key != "token" || b[0].Waiting != n-allowance || b[0].DrainSeconds < 3600 {
		t.Errorf("write_backlog = %+v, want token with %d waiting, draining in hours", b, n-allowance)
	}
	if m := h.get(t, "/metrics"); !strings.Contains(m, `hookwise_write_drain_seconds{key="token",upstream="github"}`) {
		t.Errorf("/metrics lacks the drain time of the token's writes")
	}
	deadline := time.Now().Add(10 * time.Second) // the alarm checks every second
	for len(receiver.Texts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if texts := receiver.Texts(); len(texts) != 1 || !strings.Contains(texts[0], "GitHub writes under token need") {
		t.Errorf("alerts = %q, want one saying the token's writes need hours to drain", texts)
	}
}

func (h *harness) statuses(t *testing.T) map[string]int {
	t.Helper()
	ds, err := h.app.Store.ListDeliveries(t.Context(), store.DeliveryFilter{Limit: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, d := range ds {
		by[d.Status]++
	}
	return by
}
