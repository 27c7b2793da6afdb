package pipeline

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/store"
	"github.com/tidwall/gjson"
)

// admit is the last check before a model call for a delivery without a
// stored answer: the thread's limits (repeat), then its author's.
func (p *Pipeline) admit(ctx context.Context, d store.Delivery, t *task) (*skip, error) {
	if sk, err := p.repeat(ctx, d, t); sk != nil || err != nil {
		return sk, err
	}
	return p.authorLimit(ctx, d, t)
}

// authorLimit skips d when the author it counts against (see authorOf)
// already had max_analyses_per_author analyses admitted in the last 24
// hours, in any repository: one stranger opening issues in many
// repositories is held as soon as in one. Authors whose association with
// the repository is in author_limit_exempt are not counted.
func (p *Pipeline) authorLimit(ctx context.Context, d store.Delivery, t *task) (*skip, error) {
	most := t.settings.MaxPerAuthor
	author, association := authorOf(d)
	if most == 0 || author == "" || slices.Contains(t.settings.AuthorExempt, association) {
		return nil, nil
	}
	ok, n, err := p.store.AdmitAuthor(ctx, author, d.ID, p.now().Add(-24*time.Hour), most)
	if err != nil || ok {
		return nil, err
	}
	return skipf("author_limit", "%s's threads had %d analyses in the last 24 hours, in all repositories (max_analyses_per_author %d)",
		author, n, most), nil
}

// authorOf is whom an analysis of d counts against, as a lower-case login,
// and their association with the repository as the payload gives it
// ("NONE" when it does not): the author of the issue or pull request, or
// the actor of a workflow run from a fork. A review request counts against
// nobody (only people with triage access to the repository can ask for
// one), nor does a run from a branch of the repository itself (only people
// with write access can push one).
func authorOf(d store.Delivery) (login, association string) {
	var who, assoc gjson.Result
	switch d.Event {
	case "issues":
		who, assoc = gjson.GetBytes(d.Payload, "issue.user.login"), gjson.GetBytes(d.Payload, "issue.author_association")
	case "pull_request":
		if d.Action == "review_requested" {
			return "", ""
		}
		who, assoc = gjson.GetBytes(d.Payload, "pull_request.user.login"), gjson.GetBytes(d.Payload, "pull_request.author_association")
	case "workflow_run":
		run := gjson.GetManyBytes(d.Payload, "workflow_run.head_repository.full_name", "repository.full_name", "workflow_run.actor.login")
		if run[0].String() == "" || strings.EqualFold(run[0].String(), run[1].String()) {
			return "", ""
		}
		who = run[2]
	default:
		return "", ""
	}
	association = strings.ToUpper(assoc.String())
	if association == "" {
		association = "NONE"
	}
	return strings.ToLower(who.String()), association
}
