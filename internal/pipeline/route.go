package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/store"
)

// skip is why a delivery deserves no analysis: a short code, counted in
// metrics, and a sentence for people.
type skip struct{ code, text string }

func (s skip) String() string { return s.code + ": " + s.text }

func skipf(code, format string, args ...any) *skip {
	return &skip{code: code, text: fmt.Sprintf(format, args...)}
}

// adminActions are actions that change a thread's bookkeeping, not what
// it says.
var adminActions = map[string]bool{
	"labeled": true, "unlabeled": true, "assigned": true, "unassigned": true, "milestoned": true,
	"demilestoned": true, "pinned": true, "unpinned": true, "locked": true, "unlocked": true,
	"transferred": true, "typed": true, "untyped": true, "closed": true, "deleted": true,
	"review_request_removed": true, "auto_merge_enabled": true, "auto_merge_disabled": true,
	"enqueued": true, "dequeued": true, "converted_to_draft": true,
}

// handlers plan an analysis for each event hookwise answers, one per
// file: a new event is a new handler here and a new file. A handler fills
// in t (kind, thread, subject, targets) from t.ev, or says why the delivery
// deserves no analysis.
var handlers = map[string]func(ctx context.Context, p *Pipeline, d store.Delivery, t *task) (*skip, error){
	"issues":       planIssue,
	"pull_request": planPullRequest,
	"workflow_run": planWorkflowRun,
}

// plan decides whether d deserves a model call. It returns the task, or nil
// and why it deserves none: first what every event goes through (the
// payload, the repository and its settings, who sent it), then the event's
// own handler.
func (p *Pipeline) plan(ctx context.Context, d store.Delivery) (*task, *skip, error) {
	var ev event
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return nil, skipf("bad_payload", "payload is not a JSON object of a known shape"), nil
	}
	if sk := p.routable(d, &ev); sk != nil {
		return nil, sk, nil
	}
	settings := p.opts.Settings(ev.Repository.FullName)
	if !settings.Enabled(d.Event, ev.Action) {
		return nil, skipf("not_enabled", "%s not enabled for this repository", d.EventName()), nil
	}
	repo := gh.Repo{Owner: ev.Repository.Owner.Login, Name: ev.Repository.Name, Installation: ev.Installation.ID}
	if sk, err := p.fromSelfOrIgnored(ctx, repo, ev.Sender, settings); sk != nil || err != nil {
		return nil, sk, err
	}
	t := &task{repo: repo, settings: settings, ev: &ev}
	handle := handlers[d.Event]
	if handle == nil {
		return nil, skipf("no_handler", "%s has no handler", d.EventName()), nil
	}
	if sk, err := handle(ctx, p, d, t); sk != nil || err != nil {
		return nil, sk, err
	}
	return t, nil, nil
}

// routable says why d goes to no handler at all: no repository, an owner
// hookwise does not serve, or an event it does not answer.
func (p *Pipeline) routable(d store.Delivery, ev *event) *skip {
	if ev.Repository.FullName == "" {
		return skipf("no_repository", "event has no repository")
	}
	if sk := notAllowed(p.opts.AllowedOwners, p.opts.AllowedInstallations, ev); sk != nil {
		return sk
	}
	if !slices.Contains(config.SupportedEvents(), d.EventName()) {
		if adminActions[d.Action] {
			return skipf("admin", "%s is bookkeeping, not content", d.EventName())
		}
		return skipf("no_handler", "%s has no handler", d.EventName())
	}
	return nil
}

// fromSelfOrIgnored skips what a bot, hookwise itself or an ignored author
// sent.
func (p *Pipeline) fromSelfOrIgnored(ctx context.Context, repo gh.Repo, sender user, settings config.Settings) (*skip, error) {
	if sk := p.fromBot(sender); sk != nil {
		return sk, nil
	}
	if sender.Type != "Bot" {
		self, err := p.github.Login(ctx, repo)
		if err != nil {
			return nil, fmt.Errorf("learn own login: %w", err)
		}
		if strings.EqualFold(self, sender.Login) {
			return skipf("self", "sent by hookwise itself"), nil
		}
	}
	if slices.ContainsFunc(settings.IgnoreAuthors, func(a string) bool { return strings.EqualFold(a, sender.Login) }) {
		return skipf("ignored_author", "sender %s is in ignore_authors", sender.Login), nil
	}
	return nil, nil
}

// threadFilters are the filters every issue and pull request goes through.
func threadFilters(th *thread, s config.Settings) *skip {
	switch {
	case th.State == "closed":
		return skipf("closed", "thread is closed")
	case th.Locked:
		return skipf("locked", "thread is locked")
	case slices.ContainsFunc(s.IgnoreAuthors, func(a string) bool { return strings.EqualFold(a, th.User.Login) }):
		return skipf("ignored_author", "author %s is in ignore_authors", th.User.Login)
	}
	for _, l := range th.labelNames() {
		if slices.ContainsFunc(s.IgnoreLabels, func(i string) bool { return strings.EqualFold(i, l) }) {
			return skipf("ignored_label", "thread is labelled %q, in ignore_labels", l)
		}
	}
	return nil
}

func (p *Pipeline) fromBot(u user) *skip {
	if u.Type == "Bot" || strings.HasSuffix(u.Login, "[bot]") {
		return skipf("bot", "sent by a bot (%s)", u.Login)
	}
	for _, b := range p.opts.BotLogins {
		if strings.EqualFold(b, u.Login) {
			return skipf("bot", "sent by a configured bot (%s)", u.Login)
		}
	}
	return nil
}
