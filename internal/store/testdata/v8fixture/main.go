// Command v8fixture writes the database the upgrade tests start from: what
// hookwise at schema version 8 leaves in its database and River's, with a
// delivery in every state one can be in, when it stops in the middle of its
// work. It runs against that version's source (generate.sh builds it
// there): its own migrations, store and queue write every row, and a
// stand-in for its pipeline makes the store calls the pipeline makes, in
// the pipeline's formats.
//
// It prints "ready" once every row is written and then keeps one job
// running, as a crashed instance leaves it, until it is killed.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/queue"
	"github.com/hookwise/hookwise/internal/store"
)

const (
	repo  = "acme/app"
	model = "claude-sonnet-4-5"
	// leaseTTL is the pipeline's thread lease: the default job timeout and
	// a minute.
	leaseTTL = 11 * time.Minute
	// updatedAt is the issues' updated_at in fake.IssueEvent's payloads.
	updatedAt = "2026-11-29T10:00:00Z"
	body      = "Seen on 3.2, Linux amd64. Steps to reproduce are below; it happens every time.\n\n" +
		"1. Start the planner\n2. Submit the job\n3. Watch the log"
)

// A delivery of the fixture: issue number of acme/app, opened by sender.
type delivery struct {
	guid   string
	number int
	title  string
	sender string
}

var (
	queued     = delivery{"v8-queued", 1, "Planner panics on an empty schedule", "alice"}
	dispatched = delivery{"v8-dispatched", 2, "Scheduler skips jobs after a DST change", "alice"}
	running    = delivery{"v8-running", 3, "Workers leak file descriptors on retry", "alice"}
	deferred   = delivery{"v8-deferred", 4, "REST API returns 500 on a long job name", "alice"}
	pending    = delivery{"v8-batch-pending", 5, "Docs: the cron syntax table is out of date", "alice"}
	submitted  = delivery{"v8-batch-submitted", 6, "Containers keep running after a job is cancelled", "alice"}
	analysed   = delivery{"v8-analysed", 7, "Retries ignore the max_attempts setting", "alice"}
	done       = delivery{"v8-done", 8, "Job list pagination repeats the last page", "alice"}
	skipped    = delivery{"v8-skipped", 9, "Bump golang.org/x/net from 0.30.0 to 0.31.0", "dependabot[bot]"}
	failed     = delivery{"v8-failed", 10, "Planner crash with a 3 MB schedule file", "alice"}
)

func main() {
	url := flag.String("db", "", "database: a SQLite file path or a postgres:// URL (empty)")
	flag.Parse()
	if err := run(context.Background(), *url); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string) error {
	st, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	if err := queue.Migrate(ctx, st); err != nil {
		return err
	}
	pipe := &pipeline{st: st, started: make(chan struct{})}

	// The jobs that end: each delivery's job runs to the state it stays in.
	if err := persist(ctx, st, pending, submitted, analysed, done, skipped, failed, deferred); err != nil {
		return err
	}
	q, err := queue.New(st, queue.Options{Workers: 1, Processor: pipe})
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		return err
	}
	if err := waitForJobs(ctx, st, 7); err != nil {
		return err
	}
	if err := q.Stop(ctx); err != nil {
		return err
	}
	// What the batch job had done: one request submitted, one not yet.
	it, err := st.BatchItemOf(ctx, pipe.ids[submitted.guid])
	if err != nil {
		return err
	}
	if err := st.MarkBatchSubmitted(ctx, "msgbatch_01v8fixture", []int64{it.ID}); err != nil {
		return err
	}

	// A job in progress: its worker holds the thread and has reserved its
	// model call when the instance dies.
	if err := persist(ctx, st, running); err != nil {
		return err
	}
	q, err = queue.New(st, queue.Options{Workers: 1, Processor: pipe})
	if err != nil {
		return err
	}
	if err := q.Start(ctx); err != nil {
		return err
	}
	<-pipe.started

	// A delivery the dispatcher has enqueued, and one it has not reached.
	if err := persist(ctx, st, dispatched); err != nil {
		return err
	}
	if err := dispatch(ctx, st); err != nil {
		return err
	}
	if err := persist(ctx, st, queued); err != nil {
		return err
	}
	if err := st.Ready(ctx); err != nil {
		return err
	}
	fmt.Println("ready")
	select {}
}

func persist(ctx context.Context, st *store.Store, ds ...delivery) error {
	var batch []store.Delivery
	for _, d := range ds {
		batch = append(batch, store.Delivery{
			HookID: "42", HookTarget: "repository", GUID: d.guid, Event: "issues", Action: "opened",
			Repo: repo, Sender: d.sender, ReceivedAt: time.Now(),
			Payload: fake.IssueEvent("opened", repo, d.number, d.title, body, d.sender),
		})
	}
	_, err := st.PersistDeliveries(ctx, batch)
	return err
}

// dispatch does what the dispatcher does: claims the undispatched
// deliveries and enqueues their jobs in one transaction.
func dispatch(ctx context.Context, st *store.Store) error {
	// The queue's client inserts with its MaxAttempts (10 by default).
	cfg := &river.Config{MaxAttempts: 10}
	var client *river.Client[*sql.Tx]
	var err error
	if st.Dialect == store.Postgres {
		client, err = river.NewClient(riverdatabasesql.New(st.DB), cfg)
	} else {
		client, err = river.NewClient(riversqlite.New(st.DB), cfg)
	}
	if err != nil {
		return err
	}
	return st.Tx(ctx, func(tx *sql.Tx) error {
		ids, err := st.ClaimUndispatchedTx(ctx, tx, 500)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := client.InsertTx(ctx, tx, queue.ProcessArgs{DeliveryID: id}, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// waitForJobs waits until n processing jobs have run and are not running.
func waitForJobs(ctx context.Context, st *store.Store, n int) error {
	for range 600 {
		var ran int
		err := st.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery'
			AND attempt > 0 AND state <> 'running'`).Scan(&ran)
		if err != nil {
			return err
		}
		if ran >= n {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("jobs did not finish")
}

// pipeline stands in for version 8's: for each delivery it makes the store
// calls the pipeline makes on the way to that delivery's state, with the
// pipeline's thread names, ledger keys, reasons and answers.
type pipeline struct {
	st      *store.Store
	ids     map[string]int64
	started chan struct{}
}

func (p *pipeline) Process(ctx context.Context, id int64, job string) error {
	d, err := p.st.Delivery(ctx, id)
	if err != nil {
		return err
	}
	if p.ids == nil {
		p.ids = map[string]int64{}
	}
	p.ids[d.GUID] = id
	var ev struct {
		Issue struct {
			Number int
			Title  string
		} `json:"issue"`
	}
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return err
	}
	n, title := ev.Issue.Number, ev.Issue.Title
	thread := fmt.Sprintf("%s#%d", repo, n)
	if d.GUID == skipped.guid {
		return p.st.SetDeliveryStatus(ctx, id, store.StatusSkipped, "bot: sent by a bot (dependabot[bot])")
	}
	updated, _ := time.Parse(time.RFC3339, updatedAt)
	if _, err := p.st.NoteThread(ctx, thread, id, d.ReceivedAt, updated); err != nil {
		return err
	}
	if ok, err := p.st.LockThread(ctx, thread, job, leaseTTL); err != nil || !ok {
		return fmt.Errorf("lock %s: %v %w", thread, ok, err)
	}
	call := store.UsageCall{DeliveryID: id, Repo: repo, Owner: "acme", Thread: thread, Event: "issues.opened",
		Kind: "issue-analysis", Model: model, EstimateMicros: 15_000}
	switch d.GUID {
	case running.guid:
		if _, err := p.st.Reserve(ctx, call, nil, leaseTTL); err != nil {
			return err
		}
		close(p.started)
		<-ctx.Done() // the model call that the crash interrupts
		return ctx.Err()
	case deferred.guid:
		return p.unlock(ctx, thread, job, p.deferByBudget(ctx, id, call))
	case pending.guid, submitted.guid:
		call.Batch, call.EstimateMicros = true, 7_500
		usage, err := p.st.Reserve(ctx, call, nil, 25*time.Hour)
		if err != nil {
			return err
		}
		_, err = p.st.AddBatchItem(ctx, id, usage, batchRequest(n, title),
			"waiting for the Message Batches API (half price; answered within 24 hours, usually minutes)")
		return p.unlock(ctx, thread, job, err)
	case failed.guid:
		usage, err := p.st.Reserve(ctx, call, nil, leaseTTL)
		if err != nil {
			return err
		}
		if err := p.st.Settle(ctx, usage, store.Settlement{Model: model, Outcome: "invalid_request_error", Latency: 212 * time.Millisecond,
			RequestID: "req_01v8failed"}); err != nil {
			return err
		}
		return p.unlock(ctx, thread, job, permanent("ask model: 400 Bad Request invalid_request_error: prompt is too long: 212410 tokens > 200000 maximum"))
	}
	// analysed and done: the model answered and the answer is stored.
	usage, err := p.st.Reserve(ctx, call, nil, leaseTTL)
	if err != nil {
		return err
	}
	if err := p.st.Settle(ctx, usage, store.Settlement{Model: model, Outcome: "ok", Input: 2810, Output: 402, CacheWrite: 1630,
		Micros: 20_580, Latency: 4200 * time.Millisecond, RequestID: "req_01v8" + d.GUID[3:]}); err != nil {
		return err
	}
	if err := p.st.SaveAnalysis(ctx, store.Analysis{DeliveryID: id, Repo: repo, Thread: n, Kind: "issue-analysis", Model: model,
		Result: answer, InputTokens: 2810, OutputTokens: 402, CacheWriteTokens: 1630, CostMicros: 20_580,
		Latency: 4200 * time.Millisecond, RequestID: "req_01v8" + d.GUID[3:]}); err != nil {
		return err
	}
	// What the analysis saw: the issue's title and body.
	if err := p.st.MarkAnalysed(ctx, thread, id, updated, title+"\n\n"+body); err != nil {
		return err
	}
	if d.GUID == analysed.guid {
		return p.unlock(ctx, thread, job, retryAfter{"post comment: POST https://api.github.com/repos/acme/app/issues/7/comments: 503 Service Unavailable", 30 * time.Second})
	}
	if p.st.Dialect == store.Postgres {
		if _, err := p.st.TakeWriteSlot(ctx, "token", time.Now(), 80, 500, 750*time.Millisecond); err != nil {
			return err
		}
	}
	key := fmt.Sprintf("issue-analysis %s#%d", repo, n)
	if err := p.st.RecordWrite(ctx, store.Write{Key: key, Repo: repo, Thread: n, CommentID: 9_000_008, DeliveryID: id}); err != nil {
		return err
	}
	if err := p.unlock(ctx, thread, job, nil); err != nil {
		return err
	}
	return p.st.SetDeliveryStatus(ctx, id, store.StatusDone, "posted comment 9000008 on #8; labelled bug")
}

// deferByBudget is the pipeline's answer to a reservation over the daily
// budget: the alert at 100%, and the delivery deferred to the next day.
func (p *pipeline) deferByBudget(ctx context.Context, id int64, call store.UsageCall) error {
	now := time.Now().UTC()
	start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	limit := store.Limit{Scope: "global", Period: "day " + start.Format(time.DateOnly), Start: start, End: start.AddDate(0, 0, 1), Micros: 50_000}
	_, err := p.st.Reserve(ctx, call, []store.Limit{limit}, leaseTTL)
	var over *store.OverBudget
	if !errors.As(err, &over) {
		return fmt.Errorf("reserve over the budget = %v, want an *OverBudget", err)
	}
	if first, err := p.st.RecordAlert(ctx, limit, 100, over.Spent); err != nil || !first {
		return fmt.Errorf("record alert: %v %w", first, err)
	}
	if err := p.st.MarkAlert(ctx, store.AlertRow{Scope: limit.Scope, Period: limit.Period, Threshold: 100}, nil); err != nil {
		return err
	}
	return p.st.Defer(ctx, id, over.Limit.End, fmt.Sprintf("budget: %s; deferred until %s",
		over.Error(), over.Limit.End.UTC().Format(time.RFC3339)))
}

func (p *pipeline) unlock(ctx context.Context, thread, job string, err error) error {
	if uerr := p.st.UnlockThread(context.WithoutCancel(ctx), thread, job); uerr != nil {
		return uerr
	}
	return err
}

// GaveUp records a dead letter, as the pipeline does.
func (p *pipeline) GaveUp(ctx context.Context, id int64, cause error) {
	if err := p.st.SetDeliveryStatus(ctx, id, store.StatusFailed, cause.Error()); err != nil {
		log.Fatal(err)
	}
}

// answer is an issue analysis the model gave, as the pipeline stores it.
const answer = `{"classification":"bug","close_reason":"","complexity":"small",` +
	`"impact":"Jobs on affected installations fail until restarted.","invalid":false,"labels":["bug"],` +
	`"plan":["Reproduce with the steps given","Add a regression test","Fix the code path the log points at"],` +
	`"priority":"high","questions":[],` +
	`"summary":"The reporter hits this on every run of 3.2 on Linux; the steps reproduce it."}`

// batchRequest is a batched delivery's request as the pipeline stores it
// with its batch item.
func batchRequest(n int, title string) string {
	str := map[string]any{"type": "string"}
	strs := map[string]any{"type": "array", "items": str}
	props := map[string]any{
		"classification": map[string]any{"type": "string", "enum": []string{"bug", "feature", "question", "documentation", "invalid"}},
		"summary":        str, "impact": str,
		"priority":   map[string]any{"type": "string", "enum": []string{"critical", "high", "medium", "low"}},
		"complexity": map[string]any{"type": "string", "enum": []string{"trivial", "small", "medium", "large"}},
		"plan":       strs, "questions": strs, "labels": strs,
		"invalid":      map[string]any{"type": "boolean"},
		"close_reason": str,
	}
	required := []string{"classification", "close_reason", "complexity", "impact", "invalid", "labels", "plan", "priority", "questions", "summary"}
	user := fmt.Sprintf("Analyse issue #%d in %s.\n\n<issue_title>%s</issue_title>\n<issue_body>%s</issue_body>",
		n, repo, title, body)
	b, _ := json.Marshal(map[string]any{
		"model": model, "system": "You triage GitHub issues for the maintainers of acme/app.", "prompt": user,
		"schema":     map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false},
		"max_tokens": 1024, "kind": "issue-analysis", "thread": n, "chars": 2400,
	})
	return string(b)
}

// permanent is an error no retry can fix: the queue gives the job up.
type permanent string

func (e permanent) Error() string   { return string(e) }
func (e permanent) Temporary() bool { return false }

// retryAfter is an upstream's failure with the least wait it asked for.
type retryAfter struct {
	msg  string
	wait time.Duration
}

func (e retryAfter) Error() string             { return e.msg }
func (e retryAfter) RetryDelay() time.Duration { return e.wait }
