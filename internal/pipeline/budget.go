package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/claude"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/store"
)

// budgetHeld is a call a budget did not allow, and what to do instead.
type budgetHeld struct {
	over   *store.OverBudget
	action string // config.OnLimitDefer or config.OnLimitSkip
}

func (e *budgetHeld) Error() string { return e.over.Error() }

// batchTTL is how long a reservation for the Message Batches API is
// expected to stay unsettled: a batch ends within 24 hours, and its results
// are collected within anthropic.batch_interval of that.
const batchTTL = 25 * time.Hour

// reserve writes req to the ledger as a reservation of the most it can
// cost (at the Message Batches API's price with batch), within every budget
// it counts against, and returns its id and that estimate. Over a budget it
// falls back to the cheaper model where so configured (changing
// req.Model), else it returns a *budgetHeld.
func (p *Pipeline) reserve(ctx context.Context, d store.Delivery, t *task, req *claude.Request, chars int, batch bool) (int64, int64, error) {
	call := store.UsageCall{
		DeliveryID: d.ID, Repo: d.Repo, Owner: t.repo.Owner, InstallationID: d.InstallationID,
		Thread: t.thread(), Event: d.EventName(), Kind: t.kind.name, Batch: batch,
	}
	ttl := p.opts.LeaseTTL
	if batch {
		ttl = batchTTL
	}
	limits := p.opts.Budgets.Limits(d.Repo, d.InstallationID, p.now())
	try := func(model string) (int64, error) {
		call.Model = model
		price := p.opts.Prices.For(model)
		if batch {
			price = price.Batch()
		}
		call.EstimateMicros = price.Estimate(p.est.Tokens(model, chars), int64(req.MaxTokens))
		return p.store.Reserve(ctx, call, limits, ttl)
	}
	id, err := try(req.Model)
	var over *store.OverBudget
	if !errors.As(err, &over) {
		return id, call.EstimateMicros, err
	}
	p.m.refusals.WithLabelValues(over.Limit.Scope).Inc()
	p.alertReached(ctx, over)
	action := p.opts.OnLimit
	if action == config.OnLimitFallback {
		if fb := p.opts.FallbackModel; fb != req.Model {
			id, err := try(fb)
			if err == nil {
				p.deliveryLog(d).Info("budget: falling back to a cheaper model", "model", fb, "budget", over.Error())
				req.Model = fb
				return id, call.EstimateMicros, nil
			}
			if !errors.As(err, &over) {
				return 0, 0, err
			}
		}
		action = config.OnLimitDefer
	}
	return 0, 0, &budgetHeld{over: over, action: action}
}

// outcomeOf is a call's outcome as the ledger records it: "ok" or the
// error's type.
func outcomeOf(callErr error) string {
	if callErr == nil {
		return "ok"
	}
	var ce *claude.Error
	if errors.As(callErr, &ce) {
		return ce.Type
	}
	return "error"
}

// usageOf is the usage the API reported for a call, as the ledger prices it.
func usageOf(res claude.Result) cost.Usage {
	return cost.Usage{
		Input: res.Usage.InputTokens, Output: res.Usage.OutputTokens,
		CacheWrite: res.Usage.CacheCreationInputTokens, CacheRead: res.Usage.CacheReadInputTokens,
	}
}

// settlement is the ledger's record of a call that cost micros.
func settlement(model string, u cost.Usage, micros int64, res claude.Result, callErr error) store.Settlement {
	return store.Settlement{
		Model: model, Outcome: outcomeOf(callErr), Input: u.Input, Output: u.Output, CacheWrite: u.CacheWrite, CacheRead: u.CacheRead,
		Micros: micros, Latency: res.Latency, RequestID: res.RequestID,
	}
}

// analysisOf is the stored answer of delivery d, for thread number of kind.
func analysisOf(d store.Delivery, number int, kind, model string, result json.RawMessage, u cost.Usage, micros int64, res claude.Result) store.Analysis {
	return store.Analysis{
		DeliveryID: d.ID, Repo: d.Repo, Thread: number, Kind: kind, Model: model, Result: string(result),
		InputTokens: u.Input, OutputTokens: u.Output, CacheWriteTokens: u.CacheWrite, CacheReadTokens: u.CacheRead,
		CostMicros: micros, Latency: res.Latency, RequestID: res.RequestID,
	}
}

// settle records what a call cost, and sends the alerts it set off.
func (p *Pipeline) settle(ctx context.Context, d store.Delivery, id int64, model string, u cost.Usage, micros int64, res claude.Result, callErr error) {
	// The call happened: record it even if the job's context has ended.
	ctx = context.WithoutCancel(ctx)
	st := settlement(model, u, micros, res, callErr)
	// The call cannot be made again to learn its cost: ride out a short
	// database hiccup rather than leave the ledger with an estimate.
	err := p.store.Settle(ctx, id, st)
	for wait := 100 * time.Millisecond; err != nil && wait <= 2*time.Second; wait *= 2 {
		time.Sleep(wait)
		err = p.store.Settle(ctx, id, st)
	}
	if err != nil {
		// The reservation stays counted until it expires: spending is
		// overstated for a while, never understated.
		p.deliveryLog(d).Error("settle model call", "err", err)
	}
	p.spend(ctx, d, model, micros)
}

// spend counts what a settled call of d cost, and sends the budget alerts
// it set off.
func (p *Pipeline) spend(ctx context.Context, d store.Delivery, model string, micros int64) {
	p.m.cost.WithLabelValues(model, d.Event).Add(float64(micros) / 1e6)
	for _, l := range p.opts.Budgets.Limits(d.Repo, d.InstallationID, p.now()) {
		spent, err := p.store.Spent(ctx, l)
		if err != nil {
			p.log.Error("budget spent", "scope", l.Scope, "err", err)
			continue
		}
		p.alert(ctx, l, spent, cost.Crossed(p.opts.Budgets.Thresholds(), spent, l.Micros))
	}
}

// alertReached fires the alerts of the refused limit up to 100%: a call
// was refused, so the budget is reached whatever the settled spending says.
func (p *Pipeline) alertReached(ctx context.Context, over *store.OverBudget) {
	var upTo []int
	for _, t := range p.opts.Budgets.Thresholds() {
		if t <= 100 {
			upTo = append(upTo, t)
		}
	}
	p.alert(ctx, over.Limit, over.Spent, upTo)
}

// alert sends each threshold of l that has not fired yet in its period.
func (p *Pipeline) alert(ctx context.Context, l store.Limit, spent int64, thresholds []int) {
	for _, t := range thresholds {
		first, err := p.store.RecordAlert(ctx, l, t, spent)
		if err != nil {
			p.log.Error("record budget alert", "err", err)
			continue
		}
		if !first {
			continue
		}
		p.m.alerts.WithLabelValues(fmt.Sprint(t)).Inc()
		p.SendAlert(ctx, store.AlertRow{Scope: l.Scope, Period: l.Period, Threshold: t, Spent: spent, Limit: l.Micros})
	}
}

// SendAlert sends a recorded alert and records the outcome; an alert that
// could not be sent is tried again by RetryAlerts.
func (p *Pipeline) SendAlert(ctx context.Context, a store.AlertRow) {
	log := p.log.With("scope", a.Scope, "period", a.Period, "threshold", a.Threshold,
		"spent_usd", float64(a.Spent)/1e6, "limit_usd", float64(a.Limit)/1e6)
	if p.opts.Alerter == nil {
		log.Warn("budget alert (no budget.alert_webhook configured)")
		return
	}
	sendCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := p.opts.Alerter.Send(sendCtx, cost.Alert{Scope: a.Scope, Period: a.Period, Threshold: a.Threshold,
		SpentUSD: float64(a.Spent) / 1e6, LimitUSD: float64(a.Limit) / 1e6})
	if err != nil {
		log.Warn("send budget alert", "err", err)
	} else {
		log.Info("budget alert sent")
	}
	if merr := p.store.MarkAlert(ctx, a, err); merr != nil {
		log.Error("mark budget alert", "err", merr)
	}
}

// RetryAlerts sends again the alerts that could not be sent.
func (p *Pipeline) RetryAlerts(ctx context.Context) error {
	if p.opts.Alerter == nil {
		return nil
	}
	rows, err := p.store.Alerts(ctx, true, 10)
	if err != nil {
		return err
	}
	for _, a := range rows {
		p.SendAlert(ctx, a)
	}
	return nil
}

// hold ends a delivery a budget held back: deferred until the budget's
// period ends, or skipped with a note on the thread.
func (p *Pipeline) hold(ctx context.Context, d store.Delivery, t *task, held *budgetHeld, log *slog.Logger) error {
	over := held.over
	if held.action == config.OnLimitSkip {
		if err := p.budgetNote(ctx, t, over); err != nil {
			return err
		}
		return p.skip(ctx, d, skipf("budget", "%s", over.Error()), log)
	}
	log.Info("delivery deferred by budget", "budget", over.Error(), "resume_at", over.Limit.End)
	p.m.outcome(d.Event, "deferred")
	return p.store.Defer(ctx, d.ID, over.Limit.End, fmt.Sprintf("budget: %s; deferred until %s",
		over.Error(), over.Limit.End.UTC().Format(time.RFC3339)))
}

// budgetNote tells the thread that the budget held its analysis back. The
// note carries the analysis's own marker, so that an analysis made later
// (the job retried after a crash, once reservations freed room, or the
// next event after the reset) takes its place instead of joining it; and
// a thread that already has its analysis gets no note over it.
func (p *Pipeline) budgetNote(ctx context.Context, t *task, over *store.OverBudget) error {
	if !t.settings.PostComments || len(t.targets) == 0 {
		return nil
	}
	number := t.targets[0]
	key := t.key(number)
	if _, err := p.store.WriteFor(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	comments, err := p.ownComments(ctx, t, number)
	if err != nil {
		return err
	}
	for _, c := range comments {
		if strings.Contains(c.Body, marker(key)) && !strings.HasPrefix(c.Body, budgetNotePrefix) {
			return nil // the analysis is there; the ledger lost its row in a crash
		}
	}
	body := fmt.Sprintf(budgetNotePrefix+" the %s budget for %s is used up (%s of %s). "+
		"It will look at new activity once the budget resets.",
		periodWord(over.Limit), over.Limit.Scope, cost.Dollars(over.Spent), cost.Dollars(over.Limit.Micros))
	// Owned by no delivery: the analysis, even one of this same delivery,
	// then edits the note instead of keeping it.
	_, _, err = p.upsertComment(ctx, 0, t, number, key, body)
	return err
}

const budgetNotePrefix = "hookwise did not analyse this:"

func periodWord(l store.Limit) string {
	if l.Kind() == "month" {
		return "monthly"
	}
	return "daily"
}
