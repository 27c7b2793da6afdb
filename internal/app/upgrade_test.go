package app_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
)

// An upgrade from schema version 8: the current hookwise starts on what
// version 8 left behind in the middle of its work (package store's
// testdata/v8.*.sql, issues #1–#10 of acme/app, one delivery in every
// state). It finishes each delivery that was under way, as its pipeline
// decides, with one comment and no more model calls than the delivery
// still needed; and it leaves alone what was finished: no second comment,
// no second call.
func TestUpgradeFromV8FinishesPendingDeliveries(t *testing.T) {
	t.Parallel()
	for engine, url := range storetest.URLs(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			storetest.LoadFixture(t, url, "v8")
			github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{apptest.GitHubToken}, RateLimit: 1_000_000})
			model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: apptest.ModelKey, RequestsPerMinute: 1_000_000, TokensPerMinute: 1 << 40})
			r := apptest.Start(t, github, model, func(c *config.Config) {
				c.DatabaseURL = url
				c.Anthropic.BatchInterval = config.Duration(200 * time.Millisecond)
				// The job version 8 left running is taken back at start on
				// SQLite; on PostgreSQL, River rescues it once it has run
				// for rescue_after, which it has.
				c.Queue.JobTimeout = config.Duration(20 * time.Second)
				c.Queue.RescueAfter = config.Duration(30 * time.Second)
			})
			st := r.App.Store
			deadline := 90 * time.Second

			// #1 queued, #2 dispatched, #3 running, #7 analysed and not
			// posted; #5 and #6 waiting for a batch (pending; submitted in a
			// batch the API no longer has, so answered by the Messages API).
			for _, guid := range []string{"v8-queued", "v8-dispatched", "v8-running", "v8-batch-pending", "v8-batch-submitted", "v8-analysed"} {
				awaitStatus(t, st, guid, store.StatusDone, deadline)
			}
			// #4 waits for its budget's next day, however long the others took.
			deferred, err := st.FindDelivery(t.Context(), "v8-deferred")
			if err != nil || deferred.Status != store.StatusDeferred {
				t.Fatalf("v8-deferred = %s (%s), %v; want still deferred until its budget's next day", deferred.Status, deferred.Reason, err)
			}
			// Its day ends.
			if _, err := st.DB.ExecContext(t.Context(), st.Rebind(`UPDATE hw_deliveries SET resume_at = ? WHERE id = ?`),
				time.Now().UnixMilli(), deferred.ID); err != nil {
				t.Fatal(err)
			}
			awaitStatus(t, st, "v8-deferred", store.StatusDone, deadline)

			// What was finished stays as it was.
			for guid, want := range map[string]struct{ status, reason string }{
				"v8-done":    {store.StatusDone, "posted comment 9000008 on #8; labelled bug"},
				"v8-skipped": {store.StatusSkipped, "bot: sent by a bot (dependabot[bot])"},
				"v8-failed":  {store.StatusFailed, "ask model: 400 Bad Request invalid_request_error: prompt is too long: 212410 tokens > 200000 maximum"},
			} {
				d, err := st.FindDelivery(t.Context(), guid)
				if err != nil || d.Status != want.status || d.Reason != want.reason {
					t.Errorf("%s = %s (%s), %v; want %s (%s) as version 8 left it", guid, d.Status, d.Reason, err, want.status, want.reason)
				}
			}
			all, err := st.ListDeliveries(t.Context(), store.DeliveryFilter{Limit: 100})
			if err != nil || len(all) != 10 {
				t.Fatalf("deliveries = %d, %v; want the fixture's 10", len(all), err)
			}

			// One comment on each thread that was under way, none on the rest.
			for n := 1; n <= 10; n++ {
				cs := github.Comments("acme/app", n)
				want := 0
				if n <= 7 {
					want = 1
				}
				if len(cs) != want {
					t.Errorf("acme/app#%d has %d comments, want %d", n, len(cs), want)
					continue
				}
				marker := fmt.Sprintf("<!-- hookwise:issue-analysis acme/app#%d -->", n)
				if want == 1 && !strings.Contains(cs[0].Body, marker) {
					t.Errorf("acme/app#%d's comment lacks %q: %q", n, marker, cs[0].Body)
				}
			}

			// Model calls: one for each delivery that had no answer yet
			// (#5's through the batch it was waiting for), none for #7,
			// whose answer was stored, nor for what was finished.
			calls := map[int][]bool{}
			for _, q := range model.Requests() {
				for n := 1; n <= 10; n++ {
					if strings.Contains(q.Prompt, fmt.Sprintf("issue #%d in acme/app", n)) {
						calls[n] = append(calls[n], q.Batch)
					}
				}
			}
			wantCalls := map[int][]bool{1: {false}, 2: {false}, 3: {false}, 4: {false}, 5: {true}, 6: {false}}
			for n := 1; n <= 10; n++ {
				if !slices.Equal(calls[n], wantCalls[n]) {
					t.Errorf("model calls about acme/app#%d (batched or not) = %v, want %v", n, calls[n], wantCalls[n])
				}
			}
			if got := len(model.Requests()); got != 6 {
				t.Errorf("model calls = %d, want 6", got)
			}
		})
	}
}

// awaitStatus waits until the delivery with guid has status, and fails at
// once if it ends otherwise.
func awaitStatus(t *testing.T, st *store.Store, guid, status string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d, err := st.FindDelivery(t.Context(), guid)
		if err == nil && d.Status == status {
			return
		}
		if err == nil && (d.Status == store.StatusFailed || d.Status == store.StatusSkipped || d.Status == store.StatusDiscarded) {
			t.Fatalf("%s ended %s (%s), want %s", guid, d.Status, d.Reason, status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s is %s (%s), %v; want %s", limit, guid, d.Status, d.Reason, err, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
