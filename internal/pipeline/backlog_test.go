package pipeline_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/app"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/pace"
	"github.com/hookwise/hookwise/internal/pipeline"
	"github.com/hookwise/hookwise/internal/prompt"
	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
)

// clock is the time of the GitHub pacer in these tests: hours of a write
// window pass in a moment.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// backlog is a Pipeline whose GitHub writes are paced to writesPerHour
// on clock, and a scheduler that runs its jobs as River would: a job that
// waits is snoozed until the time it was told, the most urgent due job
// runs first, and the clock jumps to the next due job when none is due.
type backlog struct {
	*harness
	clock *clock
	jobs  []*job
	done  map[int64]time.Time // when each delivery was answered on GitHub
	calls int                 // Process calls
}

type job struct {
	delivery int64
	priority int
	due      time.Time
}

func newBacklog(t *testing.T, writesPerHour int) *backlog {
	t.Helper()
	cfg := config.Default()
	// Hundreds of threads by one author, beyond the default daily budget:
	// both have tests of their own.
	cfg.Defaults.MaxAnalysesPerAuthor = new(int)
	cfg.Budget.Daily = 0
	h := newHarness(t, cfg, map[string]any{"classification": "bug", "summary": "A crash.", "labels": []string{"bug"}})
	c := &clock{now: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	ghSrv := httptest.NewServer(h.github)
	t.Cleanup(ghSrv.Close)
	paced := pace.NewTransport(nil, pace.Options{Upstream: pace.GitHub, WritesPerHour: writesPerHour, SnoozeAfter: 30 * time.Second,
		Now: c.Now, Sleep: func(_ context.Context, d time.Duration) error { c.set(c.Now().Add(d)); return nil }})
	ghc, err := gh.New(gh.Options{BaseURL: ghSrv.URL + "/", Token: ghToken, HTTPClient: &http.Client{Transport: paced}})
	if err != nil {
		t.Fatal(err)
	}
	modelSrv := httptest.NewServer(h.model)
	t.Cleanup(modelSrv.Close)
	prompts, err := prompt.New("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Defaults.QuietPeriod = new(config.Duration)
	opts := app.PipelineOptions(cfg)
	opts.Gate, opts.WriteAhead = paced, 30*time.Second
	h.p = pipeline.New(h.st, ghc, claude.New(claude.Options{APIKey: modelKey, BaseURL: modelSrv.URL}), prompts, opts, pipeline.NewMetrics(nil), nil)
	for _, r := range []string{"busy/app", "quiet/app", "acme/web"} {
		h.github.SetRepoLabels(r, []string{"bug", "question"})
	}
	return &backlog{harness: h, clock: c, done: map[int64]time.Time{}}
}

// enqueue stores a delivery for repository r and queues its job.
func (b *backlog) enqueue(t *testing.T, r, event string, payload []byte, priority int) int64 {
	t.Helper()
	var head struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		t.Fatal(err)
	}
	id := b.insert(t, store.Delivery{Event: event, Action: head.Action, Repo: r, Payload: payload})
	b.jobs = append(b.jobs, &job{delivery: id, priority: priority, due: b.clock.Now()})
	return id
}

// run works jobs until every job is finished or the clock passes until.
func (b *backlog) run(t *testing.T, until time.Time) {
	t.Helper()
	for len(b.jobs) > 0 {
		slices.SortStableFunc(b.jobs, func(x, y *job) int {
			return cmp.Or(x.due.Compare(y.due), cmp.Compare(x.priority, y.priority))
		})
		now := b.clock.Now()
		next := b.jobs[0]
		for _, j := range b.jobs {
			if !j.due.After(now) && (next.due.After(now) || j.priority < next.priority) {
				next = j
			}
		}
		if next.due.After(now) {
			if next.due.After(until) {
				return
			}
			b.clock.set(next.due)
		}
		b.calls++
		err := b.p.Process(t.Context(), next.delivery, fmt.Sprintf("job-%d", next.delivery))
		if wait := queue.RetryAfter(err); wait > 0 {
			next.due = b.clock.Now().Add(wait)
			continue
		}
		if err != nil {
			t.Fatalf("delivery %d: %v, want it answered or waiting", next.delivery, err)
		}
		b.jobs = slices.DeleteFunc(b.jobs, func(j *job) bool { return j == next })
		b.done[next.delivery] = b.clock.Now()
	}
}

// With an hour's allowance of 20 writes (10 answers of a comment and a
// label each) and 40 issues, the model is asked only for what can be
// posted within the hour, the rest wait their turn without failing, and
// each hour drains the next ten.
func TestBacklogIsPaidForOnlyWhenItCanBePosted(t *testing.T) {
	b := newBacklog(t, 20)
	start := b.clock.Now()
	var ids []int64
	for i := range 40 {
		ids = append(ids, b.enqueue(t, "busy/app", "issues", fake.IssueEvent("opened", "busy/app", i+1, fmt.Sprintf("Crash %d", i), "It crashes when I click the button twice.", "alice"), 4))
	}
	b.run(t, start.Add(30*time.Minute))
	posted := 0
	for i := range 40 {
		posted += len(b.github.Comments("busy/app", i+1))
	}
	if posted != 10 || b.model.Calls() != 10 {
		t.Errorf("after half an hour: %d comments, %d model calls; want 10 and 10", posted, b.model.Calls())
	}
	waiting, err := b.st.ListDeliveries(t.Context(), store.DeliveryFilter{Status: store.StatusWaiting, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(waiting) != 30 || !strings.Contains(waiting[0].Reason, "write window") {
		t.Fatalf("waiting deliveries = %d (%+v), want 30 waiting for the write window", len(waiting), waiting)
	}
	b.run(t, start.Add(3*time.Hour+time.Minute))
	for i, id := range ids {
		d, err := b.st.Delivery(t.Context(), id)
		if err != nil || d.Status != store.StatusDone {
			t.Fatalf("issue %d: %s (%s), %v; want done", i+1, d.Status, d.Reason, err)
		}
		if n := len(b.github.Comments("busy/app", i+1)); n != 1 {
			t.Errorf("issue %d has %d comments, want 1", i+1, n)
		}
		if hour := int(b.done[id].Sub(start) / time.Hour); hour != i/10 {
			t.Errorf("issue %d answered in hour %d, want %d", i+1, hour, i/10)
		}
	}
	if b.model.Calls() != 40 {
		t.Errorf("model calls = %d, want one per issue", b.model.Calls())
	}
	if b.calls > 40*3 {
		t.Errorf("%d job runs for 40 deliveries: waiting jobs wake far more often than their turn comes", b.calls)
	}
}

// A review request that arrives behind a thousand issue triages is
// answered as soon as the window has room, and two repositories' backlogs
// drain side by side although one of them arrived first.
func TestUrgentFirstAndRepositoriesTakeTurns(t *testing.T) {
	b := newBacklog(t, 20)
	start := b.clock.Now()
	for i := range 1000 {
		b.enqueue(t, "busy/app", "issues", fake.IssueEvent("opened", "busy/app", i+1, fmt.Sprintf("Crash %d", i), "It crashes when I click the button twice.", "alice"), 4)
	}
	b.run(t, start.Add(time.Minute))
	for i := range 20 {
		b.enqueue(t, "quiet/app", "issues", fake.IssueEvent("opened", "quiet/app", i+1, fmt.Sprintf("Hang %d", i), "It hangs when I open the settings page.", "bob"), 4)
	}
	b.github.AddPullRequest("acme/web", 7, []fake.PRFile{{Filename: "retry.go", Status: "modified", Additions: 3, Patch: "@@ -1 +1,3 @@\n+retry"}})
	review := b.enqueue(t, "acme/web", "pull_request", fake.PullRequestEvent("review_requested", "acme/web", 7, "Retries", "Adds retries.", headSHA, "carol", "hookwise", false), 1)
	b.run(t, start.Add(4*time.Hour+time.Minute))

	answered := func(r string) (n int) {
		for id, at := range b.done {
			if d, _ := b.st.Delivery(t.Context(), id); strings.Contains(string(d.Payload), `"full_name":"`+r+`"`) && at.Before(b.done[review]) {
				n++
			}
		}
		return n
	}
	if at, ok := b.done[review]; !ok || at.Sub(start) > time.Hour {
		t.Fatalf("review request answered %v after it arrived (answered: %v), want within the hour the window needs", at.Sub(start), ok)
	}
	if n := answered("busy/app"); n > 10 {
		t.Errorf("%d triages answered before the review request, want only the 10 the first hour had room for", n)
	}
	var busy, quiet int
	for id := range b.done {
		d, _ := b.st.Delivery(t.Context(), id)
		switch {
		case strings.Contains(string(d.Payload), `"full_name":"busy/app"`):
			busy++
		case strings.Contains(string(d.Payload), `"full_name":"quiet/app"`):
			quiet++
		}
	}
	// Ten answers an hour: ten triages of busy/app before the others
	// arrived, then in four hours the review and 39 shared in turns.
	if busy-10+quiet != 39 || quiet < 18 || busy-10 < 18 {
		t.Errorf("after four hours: busy/app %d answers (10 before quiet/app's arrived), quiet/app %d; want the 39 after shared in turns", busy, quiet)
	}
	if b.calls > 4*1021 {
		t.Errorf("%d job runs for 1021 deliveries in four hours", b.calls)
	}
}
