package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hookwise/hookwise/internal/pace"
	"github.com/hookwise/hookwise/internal/store"
)

// WriteGate promises a job the GitHub writes its answer will need before
// the model is paid for it (see pace.Transport.Admit).
type WriteGate interface {
	Admit(ctx context.Context, c pace.Claim, ahead time.Duration) (*pace.Grant, error)
	Withdraw(job string)
}

// claimWrites asks the gate for the writes t's answer will need. A job
// whose answer is stored already has paid for it and is served first. A
// job that will not write now (the answer comes from the Message Batches
// API) claims nothing.
func (p *Pipeline) claimWrites(ctx context.Context, d store.Delivery, t *task, job string, stored bool) (*pace.Grant, error) {
	if p.opts.Gate == nil || (!stored && t.settings.Batched(d.Event, d.Action)) {
		return nil, nil
	}
	n, err := p.writesNeeded(ctx, t)
	if err != nil || n == 0 {
		return nil, err
	}
	priority := p.opts.Priorities.For(d.Event, d.Action)
	if stored {
		priority = 0
	}
	c := pace.Claim{Key: p.github.WriteKey(t.repo), Repo: t.repo.String(), Job: job, Priority: priority, Writes: n, Arrived: d.ReceivedAt}
	return p.opts.Gate.Admit(ctx, c, p.opts.WriteAhead)
}

// writesNeeded is the most writes an answer to t makes: per thread it
// answers on, a comment, and one request that labels and (where allowed)
// closes the issue, when there are labels it may apply or it may close.
func (p *Pipeline) writesNeeded(ctx context.Context, t *task) (int, error) {
	per := 0
	if t.settings.PostComments {
		per++
	}
	if t.kind.labels() {
		closes := t.settings.AutoCloseInvalid && t.outsider()
		labels := false
		if t.settings.ApplyLabels && !closes {
			allowed, err := t.allowed(ctx, p)
			if err != nil {
				return 0, err
			}
			labels = len(allowed) > 0
		}
		if closes || labels {
			per++
		}
	}
	return per * len(t.targets), nil
}

// noteWait records that d's job waits for an upstream's allowance, so
// that the API and CLI show it as waiting and until when; the job itself
// is snoozed by the queue. A job that ended otherwise leaves the gate's
// line.
func (p *Pipeline) noteWait(ctx context.Context, d store.Delivery, job string, err error, log *slog.Logger) {
	var wait *pace.WaitError
	if !errors.As(err, &wait) {
		if p.opts.Gate != nil {
			p.opts.Gate.Withdraw(job)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	until := p.now().Add(wait.RetryAfterDuration()).UTC().Format(time.RFC3339)
	reason := fmt.Sprintf("%s; next try at %s", wait.Error(), until)
	log.Debug("delivery waits", "reason", reason)
	if err := p.store.SetDeliveryStatus(ctx, d.ID, store.StatusWaiting, reason); err != nil {
		log.Warn("record wait", "err", err)
	}
}
