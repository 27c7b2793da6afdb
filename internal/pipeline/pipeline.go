// Package pipeline turns one stored delivery into at most one model call and
// its effects on GitHub: route the event to its handler, filter out what
// deserves no call, gather the thread's context, ask the model for a
// structured answer (stored before anything is posted), then write the
// comment, labels and — where enabled — the close, idempotently.
package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/guard"
	"github.com/hookwise/hookwise/internal/pace"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/tidwall/gjson"
)

// GitHub is what the pipeline needs of GitHub.
type GitHub interface {
	ListComments(ctx context.Context, r gh.Repo, number, newest int) ([]gh.Comment, int, error)
	CreateComment(ctx context.Context, r gh.Repo, number int, body string) (gh.Comment, error)
	EditComment(ctx context.Context, r gh.Repo, id int64, body string) error
	RepoLabels(ctx context.Context, r gh.Repo, most int) ([]string, error)
	AddLabels(ctx context.Context, r gh.Repo, number int, labels []string) error
	CloseIssue(ctx context.Context, r gh.Repo, number int, reason string, labels []string) error
	PullRequestFiles(ctx context.Context, r gh.Repo, number, most int) ([]gh.File, int, error)
	WorkflowJobs(ctx context.Context, r gh.Repo, runID int64, keep func(gh.Job) bool, most int) ([]gh.Job, int, error)
	Login(ctx context.Context, r gh.Repo) (string, error)
	WriteKey(r gh.Repo) string
}

// Model is what the pipeline needs of Claude: the Messages API, and the
// Message Batches API for events a repository marks as not urgent.
type Model interface {
	Complete(ctx context.Context, req claude.Request) (claude.Result, error)
	FitBatch(reqs []claude.BatchRequest) (int, error)
	SubmitBatch(ctx context.Context, reqs []claude.BatchRequest) (claude.Batch, int, error)
	BatchesSince(ctx context.Context, since time.Time) ([]claude.Batch, error)
	Batch(ctx context.Context, id string) (claude.Batch, error)
	BatchResults(ctx context.Context, b claude.Batch) iter.Seq2[claude.BatchResult, error]
}

// Prompts renders the prompt templates.
type Prompts interface {
	Render(name string, data any) (string, error)
}

var (
	_ GitHub = (*gh.Client)(nil)
	_ Model  = (*claude.Client)(nil)
)

// Alerter sends budget alerts.
type Alerter interface {
	Send(ctx context.Context, a cost.Alert) error
}

// Options are what the pipeline works by. app builds them from the
// configuration (app.PipelineOptions); the pipeline reads nothing else of
// it.
type Options struct {
	// Settings returns what hookwise does in a repository ("owner/name").
	Settings func(repo string) config.Settings
	// AllowedOwners and AllowedInstallations are the accounts served;
	// both empty serve everyone (see notAllowed).
	AllowedOwners        []string
	AllowedInstallations []int64
	// BotLogins are accounts taken as bots besides GitHub's own.
	BotLogins []string
	// MaxTokens caps what a kind of analysis may ask for.
	MaxTokens int
	Prices    cost.Table
	Budgets   cost.Budgets
	// OnLimit and FallbackModel say what a call that would pass a budget
	// does: config.BudgetConfig's on_limit and fallback_model.
	OnLimit, FallbackModel string
	// Alerter sends budget alerts; nil records and logs them only.
	Alerter Alerter
	// LeaseTTL bounds how long a crashed worker keeps a thread locked; a
	// budget reservation is marked overdue after it (and keeps counting).
	LeaseTTL time.Duration
	// Priorities rank the work waiting for GitHub's write allowance.
	Priorities config.Priorities
	// Gate promises the writes of an answer before the model is asked,
	// which must be able to start within WriteAhead; nil claims nothing.
	Gate       WriteGate
	WriteAhead time.Duration
}

// Pipeline processes deliveries. It is safe for concurrent use.
type Pipeline struct {
	store   *store.Store
	github  GitHub
	model   Model
	prompts Prompts
	opts    Options
	log     *slog.Logger
	m       *Metrics
	est     cost.Estimator
	now     func() time.Time
}

// New builds a Pipeline.
func New(st *store.Store, github GitHub, model Model, prompts Prompts, opts Options, m *Metrics, log *slog.Logger) *Pipeline {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{store: st, github: github, model: model, prompts: prompts, opts: opts, log: log, m: m, now: time.Now}
}

// GaveUp records that a delivery's processing failed for good: a permanent
// error, or attempts or age used up. It is then a dead letter.
func (p *Pipeline) GaveUp(ctx context.Context, deliveryID int64, cause error) {
	d, err := p.store.Delivery(ctx, deliveryID)
	if err != nil {
		d = store.Delivery{ID: deliveryID}
	}
	log := p.deliveryLog(d)
	var temp interface{ Temporary() bool }
	log.Error("delivery failed", "err", cause, "permanent", errors.As(cause, &temp) && !temp.Temporary())
	if err := p.store.SetDeliveryStatus(ctx, deliveryID, store.StatusFailed, cause.Error()); err != nil {
		log.Error("record failure", "err", err)
		return
	}
	p.m.outcome(d.Event, "failed")
}

// deliveryLog is the logger of everything said about d: every line names
// the delivery (GitHub's GUID, "delivery"), its row ("delivery_id"), its
// event and repository.
func (p *Pipeline) deliveryLog(d store.Delivery) *slog.Logger {
	return p.log.With("delivery", d.GUID, "delivery_id", d.ID, "event", d.Event, "action", d.Action, "repo", d.Repo)
}

// busyError asks the queue to try again later without using an attempt:
// another job holds the thread, a newer event on it is not planned yet, or
// the thread is not quiet yet.
type busyError struct {
	why  string
	wait time.Duration
}

func (e busyError) Error() string                     { return e.why }
func (e busyError) RetryAfterDuration() time.Duration { return e.wait }

// Process handles one delivery. It is safe to run again after a crash at any
// point: the model's answer is reused once stored, and comments are found by
// their marker before anything is posted. A wait for an upstream's
// allowance is recorded as the delivery's status before the job snoozes.
func (p *Pipeline) Process(ctx context.Context, deliveryID int64, job string) error {
	d, err := p.store.Delivery(ctx, deliveryID)
	if err != nil {
		return err
	}
	switch d.Status {
	case store.StatusDone, store.StatusSkipped, store.StatusDeferred, store.StatusDiscarded, store.StatusBatched:
		return nil
	}
	log := p.deliveryLog(d).With("job", job)
	err = p.process(ctx, d, job, log)
	p.noteWait(ctx, d, job, err, log)
	return err
}

func (p *Pipeline) process(ctx context.Context, d store.Delivery, job string, log *slog.Logger) error {
	t, sk, err := p.plan(ctx, d)
	if err != nil {
		return err
	}
	if t == nil {
		return p.skip(ctx, d, sk, log)
	}
	r := &run{p: p, d: d, t: t, job: job, log: log.With("thread", t.thread()), updated: t.updated(d.ReceivedAt)}
	_, r.stored = p.storedAnalysis(ctx, d.ID)
	if sk, err := r.coalesce(ctx); sk != nil || err != nil {
		return r.end(ctx, sk, err)
	}
	unlock, err := r.lease(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if sk, err := r.admit(ctx); sk != nil || err != nil {
		return r.end(ctx, sk, err)
	}
	return r.answer(ctx)
}

// run is one job's handling of a planned delivery, step by step.
type run struct {
	p       *Pipeline
	d       store.Delivery
	t       *task
	job     string
	log     *slog.Logger
	stored  bool      // the model's answer for d is stored already
	updated time.Time // when GitHub last changed the thread, as d shows it
}

// end ends the run with err, or else as skipped for sk.
func (r *run) end(ctx context.Context, sk *skip, err error) error {
	if err != nil {
		return err
	}
	return r.p.skip(ctx, r.d, sk, r.log)
}

// coalesce lets only the newest delivery of a thread be analysed, once
// the thread has been quiet for a while; the others end here. A delivery
// whose answer is stored was let through before.
func (r *run) coalesce(ctx context.Context) (*skip, error) {
	thread := r.t.thread()
	st, err := r.p.store.NoteThread(ctx, thread, r.d.ID, r.d.ReceivedAt, r.updated)
	if err != nil || r.stored {
		return nil, err
	}
	if wait, err := r.p.newerUnplanned(ctx, r.d, r.t); err != nil || wait {
		if err != nil {
			return nil, err
		}
		return nil, busyError{why: "a newer event on " + thread + " is not planned yet", wait: time.Second}
	}
	if st.LatestDelivery != r.d.ID {
		return skipf("coalesced", "delivery %d is newer on %s and is analysed instead", st.LatestDelivery, thread), nil
	}
	if wait := st.LatestAt.Add(r.t.settings.QuietPeriod).Sub(r.p.now()); wait > 0 {
		return nil, busyError{why: thread + " is not quiet yet", wait: wait + 10*time.Millisecond}
	}
	return nil, nil
}

// lease takes the thread for this job, and returns what gives it back.
// The lease belongs to the job, not the delivery: a retry of this job
// (after a crash) takes it back at once, while a second job for the same
// delivery (a replay) waits its turn.
func (r *run) lease(ctx context.Context) (func(), error) {
	thread := r.t.thread()
	ok, err := r.p.store.LockThread(ctx, thread, r.job, r.p.opts.LeaseTTL)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, busyError{why: "thread " + thread + " is being handled by another job", wait: 3 * time.Second}
	}
	return func() {
		if err := r.p.store.UnlockThread(context.WithoutCancel(ctx), thread, r.job); err != nil {
			r.log.Warn("unlock thread", "err", err)
		}
	}, nil
}

// admit decides, under the lease, whether d is still worth answering: a
// new delivery goes through the spend filters; a stored answer must not
// overwrite a newer one already posted (a retry that waited out a GitHub
// outage, a batch that came back late).
func (r *run) admit(ctx context.Context) (*skip, error) {
	if !r.stored {
		return r.p.admit(ctx, r.d, r.t)
	}
	st, err := r.p.store.Thread(ctx, r.t.thread())
	if err != nil {
		return nil, err
	}
	if store.Newer(st.AnalysedUpdated, st.AnalysedDelivery, r.updated, r.d.ID) {
		return skipf("coalesced", "delivery %d's newer analysis of %s is posted", st.AnalysedDelivery, r.t.thread()), nil
	}
	return nil, nil
}

// answer claims the writes of the answer, gets the answer (stored, or
// from the model) and writes it to GitHub.
func (r *run) answer(ctx context.Context) error {
	p, d, t := r.p, r.d, r.t
	grant, err := p.claimWrites(ctx, d, t, r.job, r.stored)
	if err != nil {
		return err
	}
	defer grant.Release()
	ctx = pace.WithGrant(ctx, grant)
	a, err := p.analyse(ctx, d, t)
	var held *budgetHeld
	switch {
	case errors.As(err, &held):
		return p.hold(ctx, d, t, held, r.log)
	case errors.Is(err, errBatched):
		// The delivery waits for the Message Batches API; its job ends
		// here, and the periodic job queues a new one with the answer.
		r.log.Info("delivery waits for the Message Batches API")
		p.m.outcome(d.Event, "batched")
		return nil
	case err != nil:
		return err
	}
	if err := p.store.MarkAnalysed(ctx, t.thread(), d.ID, r.updated, t.seen); err != nil {
		return err
	}
	summary, err := p.act(ctx, d, t, a)
	if err != nil {
		return err
	}
	r.log.Info("delivery handled", "result", summary, "model", a.Model,
		"input_tokens", a.InputTokens, "output_tokens", a.OutputTokens)
	p.m.outcome(d.Event, "done")
	return p.store.SetDeliveryStatus(ctx, d.ID, store.StatusDone, summary)
}

func (p *Pipeline) skip(ctx context.Context, d store.Delivery, sk *skip, log *slog.Logger) error {
	log.Debug("delivery skipped", "reason", sk.String())
	p.m.outcome(d.Event, "skipped")
	p.m.skipped.WithLabelValues(sk.code).Inc()
	return p.store.SetDeliveryStatus(ctx, d.ID, store.StatusSkipped, sk.String())
}

func (p *Pipeline) storedAnalysis(ctx context.Context, id int64) (store.Analysis, bool) {
	a, err := p.store.Analysis(ctx, id)
	return a, err == nil
}

// newerUnplanned reports whether a newer delivery of t's thread is stored
// but not planned yet: it may be the thread's latest, so d must wait for it
// whatever the quiet period says (the queue may be behind).
func (p *Pipeline) newerUnplanned(ctx context.Context, d store.Delivery, t *task) (bool, error) {
	if t.kind == &workflowKind {
		return false, nil
	}
	// A newer "opened" of the same thread (a second hook's copy) is never
	// the newer state: the repeat check catches it.
	ds, err := p.store.Unplanned(ctx, d.Repo, d.ID, []string{"issues.edited", "pull_request.synchronize",
		"pull_request.edited", "pull_request.ready_for_review", "pull_request.review_requested"})
	if err != nil {
		return false, err
	}
	for _, o := range ds {
		n := gjson.GetBytes(o.Payload, "issue.number")
		if !n.Exists() {
			n = gjson.GetBytes(o.Payload, "pull_request.number")
		}
		if int(n.Int()) == t.number {
			return true, nil
		}
	}
	return false, nil
}

// repeat decides whether a thread analysed before deserves another
// analysis for d: something that matters changed, and the thread's limit
// is not reached.
func (p *Pipeline) repeat(ctx context.Context, d store.Delivery, t *task) (*skip, error) {
	st, err := p.store.Thread(ctx, t.thread())
	if err != nil {
		return nil, err
	}
	if st.LatestDelivery != d.ID {
		return skipf("coalesced", "delivery %d is newer on %s and is analysed instead", st.LatestDelivery, t.thread()), nil
	}
	if st.AnalysedDelivery == 0 || st.AnalysedDelivery == d.ID {
		return nil, nil
	}
	switch t.kind {
	case &issueKind:
		if n := changed(st.AnalysedSubject, t.seen); n < t.settings.MinChangeChars {
			return skipf("no_change", "%d characters changed since the last analysis (min_change_chars %d)", n, t.settings.MinChangeChars), nil
		}
	default:
		if st.AnalysedSubject == t.seen {
			return skipf("no_change", "%s already analysed", shortSHA(t.seen)), nil
		}
	}
	n, err := p.store.AnalysesSince(ctx, d.Repo, t.number, p.now().Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	if n >= t.settings.MaxAnalyses {
		return skipf("thread_limit", "%d analyses of %s in 24 hours (max_analyses_per_thread %d)", n, t.thread(), t.settings.MaxAnalyses), nil
	}
	return nil, nil
}

// analyse returns the stored answer for d, or asks the model and stores it.
// For an event the repository marks as not urgent it asks through the
// Message Batches API instead, and returns errBatched: the answer is stored
// when the batch ends (see RunBatches).
func (p *Pipeline) analyse(ctx context.Context, d store.Delivery, t *task) (store.Analysis, error) {
	a, err := p.store.Analysis(ctx, d.ID)
	if err == nil {
		return a, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.Analysis{}, err
	}
	batch, err := p.batchable(ctx, d, t)
	if err != nil {
		return store.Analysis{}, err
	}
	system, user, err := t.prompt(ctx, p)
	if err != nil {
		return store.Analysis{}, err
	}
	req := claude.Request{
		Model:     t.settings.Model,
		System:    system,
		Prompt:    user,
		Schema:    t.kind.schema,
		MaxTokens: min(t.kind.maxTokens, p.opts.MaxTokens),
	}
	chars := len(system) + len(user) + t.kind.schemaChars()
	usageID, estimate, err := p.reserve(ctx, d, t, &req, chars, batch)
	if err != nil {
		return store.Analysis{}, err
	}
	if batch {
		return store.Analysis{}, p.toBatch(ctx, d, t, req, chars, usageID)
	}
	res, model, usage, micros, err := p.call(ctx, d, req, usageID, estimate)
	if err != nil {
		return store.Analysis{}, err
	}
	p.est.Learn(req.Model, chars, usage.Input+usage.CacheWrite+usage.CacheRead)
	result := res.JSON
	if len(t.omitted) > 0 {
		// Keep the files left out of the prompt with the answer, so a review
		// posted by a retry still names them.
		if result, err = withNotReviewed(result, t.omitted); err != nil {
			return store.Analysis{}, permanentError{err}
		}
	}
	a = analysisOf(d, t.number, t.kind.name, model, result, usage, micros, res)
	if err := p.store.SaveAnalysis(ctx, a); err != nil {
		return store.Analysis{}, err
	}
	// Read back: if a concurrent run stored its answer first, act on that one.
	return p.store.Analysis(ctx, d.ID)
}

// labelAndClose applies the answer's labels to thread number and closes
// it where closing, in one write, and says what it did.
func (p *Pipeline) labelAndClose(ctx context.Context, t *task, number int, ans answer, closing bool) ([]string, error) {
	var labels []string
	if t.settings.ApplyLabels && len(ans.Labels) > 0 {
		var err error
		if labels, err = p.labelsFor(ctx, t, ans.Labels); err != nil {
			return nil, err
		}
	}
	var did []string
	if len(labels) > 0 {
		did = append(did, "labelled "+strings.Join(labels, ", "))
	}
	switch {
	case closing:
		if err := p.github.CloseIssue(ctx, t.repo, number, "not_planned", labels); err != nil {
			return nil, fmt.Errorf("close issue: %w", err)
		}
		did = append(did, "closed as not planned")
	case len(labels) > 0:
		if err := p.github.AddLabels(ctx, t.repo, number, labels); err != nil {
			return nil, fmt.Errorf("add labels: %w", err)
		}
	}
	return did, nil
}

// call asks the model for req, reserved in the ledger as usageID, and
// settles what it cost: what the API reported, or the estimate when an
// answer was lost. A call that was never sent (it waits for the API's
// allowance or a free slot) gives its reservation back.
func (p *Pipeline) call(ctx context.Context, d store.Delivery, req claude.Request, usageID, estimate int64) (claude.Result, string, cost.Usage, int64, error) {
	res, err := p.model.Complete(ctx, req)
	if wait := (*pace.WaitError)(nil); errors.As(err, &wait) {
		if uerr := p.store.Unreserve(context.WithoutCancel(ctx), usageID); uerr != nil {
			p.deliveryLog(d).Warn("drop the reservation of a call not made", "err", uerr)
		}
		return res, "", cost.Usage{}, 0, err
	}
	p.m.modelCall(req.Model, res, err)
	model := cmp.Or(res.Model, req.Model)
	usage := usageOf(res)
	micros := p.opts.Prices.For(model).Micros(usage)
	if ce := (*claude.Error)(nil); errors.As(err, &ce) && ce.Unanswered {
		// Sent, and no answer: the API may have run it and billed it.
		// Charge the estimate, so that lost answers never let spending
		// pass a budget unseen.
		micros = estimate
	}
	p.settle(ctx, d, usageID, model, usage, micros, res, err)
	if err != nil {
		return res, model, usage, micros, fmt.Errorf("ask model: %w", err)
	}
	return res, model, usage, micros, nil
}

// act writes the answer to GitHub and returns a one-line account of it.
func (p *Pipeline) act(ctx context.Context, d store.Delivery, t *task, a store.Analysis) (string, error) {
	var ans answer
	if err := json.Unmarshal([]byte(a.Result), &ans); err != nil {
		return "", permanentError{fmt.Errorf("decode stored answer: %w", err)}
	}
	targets := t.targets
	if len(targets) == 0 {
		return "analysis stored (no thread to comment on)", nil
	}
	closing := false
	if ans.Invalid {
		var err error
		if closing, err = p.mayClose(ctx, t); err != nil {
			return "", err
		}
	}
	t.closing = closing
	var did []string
	for _, number := range targets {
		if t.settings.PostComments {
			text := t.kind.render(t, ans)
			if ans.Truncated {
				text += "\n_The answer was cut at the model's length limit: it may be incomplete._\n"
			}
			id, verb, err := p.upsertComment(ctx, d.ID, t, number, t.key(number), text)
			if err != nil {
				return "", err
			}
			did = append(did, fmt.Sprintf("%s comment %d on #%d", verb, id, number))
		}
		more, err := p.labelAndClose(ctx, t, number, ans, closing)
		if err != nil {
			return "", err
		}
		did = append(did, more...)
	}
	if len(did) == 0 {
		return "analysis stored (comments and labels disabled)", nil
	}
	return strings.Join(did, "; "), nil
}

const markerPrefix = "<!-- hookwise:"

// marker is the hidden line that names what a comment answers. A key
// cannot end the HTML comment early, whatever a payload put in it.
func marker(key string) string {
	return markerPrefix + strings.ReplaceAll(key, "--", "- -") + " -->"
}

// HasMarker reports whether a comment body carries a hookwise marker. Anyone
// can write one: it proves nothing about who wrote the comment.
func HasMarker(body string) bool { return strings.Contains(body, markerPrefix) }

// upsertComment posts text on the thread unless a comment of hookwise's for
// key exists, in which case it is updated (or left alone when owner, the
// delivery that answers, wrote it; owner 0 is no delivery, so anything
// updates it). text passes the output guard, and the marker is added, here
// and nowhere else.
func (p *Pipeline) upsertComment(ctx context.Context, owner int64, t *task, number int, key, text string) (int64, string, error) {
	r := t.repo
	body := guard.Comment(text, t.addressed()) + "\n\n" + marker(key)
	w, err := p.store.WriteFor(ctx, key)
	switch {
	case err == nil:
		if w.DeliveryID == owner {
			return w.CommentID, "kept", nil
		}
		err := p.github.EditComment(ctx, r, w.CommentID, body)
		var ghErr *gh.Error
		if err == nil {
			return w.CommentID, "updated", p.store.RecordWrite(ctx, store.Write{Key: key, Repo: t.repo.String(), Thread: number, CommentID: w.CommentID, DeliveryID: owner})
		}
		if !errors.As(err, &ghErr) || ghErr.Status != http.StatusNotFound {
			return 0, "", fmt.Errorf("update comment: %w", err)
		}
		// Someone deleted our comment: post a new one below.
	case !errors.Is(err, store.ErrNotFound):
		return 0, "", err
	}
	// Not in the ledger: a crash may have come between posting and recording,
	// so look on GitHub, among hookwise's own comments, before posting.
	comments, err := p.ownComments(ctx, t, number)
	if err != nil {
		return 0, "", err
	}
	mark := marker(key)
	for _, c := range comments {
		if strings.Contains(c.Body, mark) {
			verb := "found"
			if c.Body != body {
				if err := p.github.EditComment(ctx, r, c.ID, body); err != nil {
					return 0, "", fmt.Errorf("update comment: %w", err)
				}
				verb = "updated"
			}
			return c.ID, verb, p.store.RecordWrite(ctx, store.Write{Key: key, Repo: t.repo.String(), Thread: number, CommentID: c.ID, DeliveryID: owner})
		}
	}
	c, err := p.github.CreateComment(ctx, r, number, body)
	if err != nil {
		return 0, "", fmt.Errorf("post comment: %w", err)
	}
	p.m.comments.Inc()
	return c.ID, "posted", p.store.RecordWrite(ctx, store.Write{Key: key, Repo: t.repo.String(), Thread: number, CommentID: c.ID, DeliveryID: owner})
}

// permanentError marks a failure that no retry can fix.
type permanentError struct{ error }

func (permanentError) Temporary() bool { return false }
func (e permanentError) Unwrap() error { return e.error }

// withNotReviewed adds files to the not_reviewed list of a review answer.
func withNotReviewed(result json.RawMessage, files []string) (json.RawMessage, error) {
	var fields map[string]any
	if err := json.Unmarshal(result, &fields); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	var list []any
	if old, ok := fields["not_reviewed"].([]any); ok {
		list = old
	}
	for _, f := range files {
		list = append(list, f)
	}
	fields["not_reviewed"] = list
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	return out, nil
}
