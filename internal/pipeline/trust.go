package pipeline

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hookwise/hookwise/internal/gh"
)

// What hookwise may do on a thread depends on whose text steers the model.
// Labels are applied from an allowlist only; on an outsider's thread
// (an author without write access, or a pull request from a fork) only
// its conventional triage part, since other labels ("safe-to-test",
// "automerge") can start workflows that run the outsider's code with the
// repository's secrets. An issue is closed only where the repository
// enables it, only an outsider's, and only while nobody but its author has
// spoken on it, so that a third party's comment cannot talk the model into
// closing someone else's issue.

// triageLabels are the conventional labels hookwise may apply when a
// repository configures no allowlist.
var triageLabels = []string{"bug", "enhancement", "question", "documentation", "invalid",
	"duplicate", "help wanted", "good first issue"}

// sizeLabelRE matches the usual spellings of size labels: "size/XS",
// "size: L", "size-medium".
var sizeLabelRE = regexp.MustCompile(`(?i)^size\s*[/:-]?\s*(xxs|xs|s|m|l|xl|xxl|small|medium|large)$`)

// triageScan is how many of a repository's labels are read looking for
// its triage labels: five pages. A repository with more labels than that
// names the ones hookwise may apply in label_allowlist.
const triageScan = 500

func isTriageLabel(name string) bool {
	name = strings.TrimSpace(name)
	return sizeLabelRE.MatchString(name) || slices.ContainsFunc(triageLabels, func(l string) bool { return strings.EqualFold(l, name) })
}

// insiderAssociations are the author_association values of people with
// write access to the repository.
var insiderAssociations = []string{"OWNER", "MEMBER", "COLLABORATOR"}

// outsider reports whether the thread's text comes from someone without
// write access: its author is not an owner, member or collaborator, or it
// is a pull request whose head lives in another repository (a fork).
func (t *task) outsider() bool {
	var th *thread
	switch {
	case t.ev.Issue != nil:
		th = t.ev.Issue
	case t.ev.PullRequest != nil:
		pr := t.ev.PullRequest
		if pr.Head.Repo == nil || !strings.EqualFold(pr.Head.Repo.FullName, t.repo.String()) {
			return true
		}
		th = &pr.thread
	default:
		return true
	}
	return !slices.Contains(insiderAssociations, th.Association)
}

// labelsFor keeps the model's labels that t's thread may get, in the
// allowlist's spelling.
func (p *Pipeline) labelsFor(ctx context.Context, t *task, want []string) ([]string, error) {
	allowed, err := t.allowed(ctx, p)
	if err != nil {
		return nil, err
	}
	if t.outsider() {
		allowed = slices.DeleteFunc(slices.Clone(allowed), func(l string) bool {
			if len(t.settings.OutsiderLabels) > 0 {
				return !slices.ContainsFunc(t.settings.OutsiderLabels, func(o string) bool { return strings.EqualFold(o, l) })
			}
			return !isTriageLabel(l)
		})
	}
	byFold := map[string]string{}
	for _, l := range allowed {
		byFold[strings.ToLower(l)] = l
	}
	var out []string
	for _, l := range want {
		if name, ok := byFold[strings.ToLower(strings.TrimSpace(l))]; ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// mayClose reports whether t's issue may be closed as invalid: the
// repository enables it, the author is an outsider, and nobody else has
// commented on the thread.
func (p *Pipeline) mayClose(ctx context.Context, t *task) (bool, error) {
	if t.kind != &issueKind || !t.settings.AutoCloseInvalid || !t.outsider() {
		return false, nil
	}
	_, others, err := p.commentsByAuthor(ctx, t, t.number)
	if err != nil {
		return false, err
	}
	author := t.ev.Issue.User.Login
	for _, c := range others {
		if !strings.EqualFold(c.Author, author) {
			return false, nil
		}
	}
	return true, nil
}

// addressed are the people a comment on t may mention: the thread's author
// and a requested reviewer. Every other mention is neutralised.
func (t *task) addressed() []string {
	var out []string
	switch {
	case t.ev.Issue != nil:
		out = append(out, t.ev.Issue.User.Login)
	case t.ev.PullRequest != nil:
		out = append(out, t.ev.PullRequest.User.Login)
	}
	if t.ev.Reviewer != nil {
		out = append(out, t.ev.Reviewer.Login)
	}
	return out
}

// ownComments lists the comments on thread number that hookwise itself
// wrote. Only these are ever searched for a marker and edited: anyone can
// post a comment that carries hookwise's marker.
func (p *Pipeline) ownComments(ctx context.Context, t *task, number int) ([]gh.Comment, error) {
	own, _, err := p.commentsByAuthor(ctx, t, number)
	return own, err
}

// commentsByAuthor splits the comments on thread number into hookwise's
// own and everyone else's.
func (p *Pipeline) commentsByAuthor(ctx context.Context, t *task, number int) (own, others []gh.Comment, err error) {
	comments, err := t.comments(ctx, p, number)
	if err != nil {
		return nil, nil, err
	}
	self, err := p.github.Login(ctx, t.repo)
	if err != nil {
		return nil, nil, fmt.Errorf("learn own login: %w", err)
	}
	for _, c := range comments {
		if strings.EqualFold(c.Author, self) {
			own = append(own, c)
		} else {
			others = append(others, c)
		}
	}
	return own, others, nil
}
