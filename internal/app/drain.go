package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/pace"
)

// drainCheckEvery is how often, at most, the write backlogs are compared
// with queue.drain_alert; a shorter threshold is checked more often.
const drainCheckEvery = 30 * time.Second

// drainAlarm tells the operator when the work waiting for a credential's
// GitHub write allowance would take longer than the threshold to drain:
// once when it does, and once when it is back under, with how long it
// lasted.
type drainAlarm struct {
	threshold time.Duration
	every     time.Duration
	backlogs  func() []pace.Backlog
	notify    func(context.Context, cost.Notice) error // nil: the log only
	log       *slog.Logger
	now       func() time.Time
	since     map[string]time.Time // keys over the threshold, since when
}

func (a *drainAlarm) run(ctx context.Context) {
	tick := time.NewTicker(a.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.check(ctx)
		}
	}
}

// check compares every backlog with the threshold and alerts on a change.
func (a *drainAlarm) check(ctx context.Context) {
	now := a.now()
	over := map[string]bool{}
	for _, b := range a.backlogs() {
		if b.DrainIn <= a.threshold {
			continue
		}
		over[b.Key] = true
		if _, firing := a.since[b.Key]; firing {
			continue
		}
		a.since[b.Key] = now
		a.send(ctx, cost.Notice{Kind: "write_backlog", Fields: map[string]any{
			"key": b.Key, "state": "firing", "drain_seconds": int64(b.DrainIn.Seconds()), "writes": b.Writes, "waiting": b.Claims,
		}, Text: fmt.Sprintf("hookwise: GitHub writes under %s need %s to drain (%d waiting, %d writes; queue.drain_alert %s)",
			b.Key, b.DrainIn.Round(time.Minute), b.Claims, b.Writes, a.threshold)})
	}
	for key, since := range a.since {
		if over[key] {
			continue
		}
		delete(a.since, key)
		lasted := now.Sub(since).Round(time.Second)
		a.send(ctx, cost.Notice{Kind: "write_backlog", Fields: map[string]any{
			"key": key, "state": "resolved", "lasted_seconds": int64(lasted.Seconds()),
		}, Text: fmt.Sprintf("hookwise: GitHub writes under %s drain within %s again, after %s", key, a.threshold, lasted)})
	}
}

func (a *drainAlarm) send(ctx context.Context, n cost.Notice) {
	a.log.Warn(n.Text)
	if a.notify == nil {
		return
	}
	if err := a.notify(ctx, n); err != nil {
		a.log.Error("send the write backlog alert", "err", err)
	}
}
