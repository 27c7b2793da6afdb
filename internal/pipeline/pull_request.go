package pipeline

import (
	"context"
	"path"
	"slices"
	"strings"

	"github.com/hookwise/hookwise/internal/store"
)

// planPullRequest plans the review of an opened, pushed or ready pull
// request, or one whose review was requested.
func planPullRequest(ctx context.Context, p *Pipeline, d store.Delivery, t *task) (*skip, error) {
	pr := t.ev.PullRequest
	if pr == nil {
		return skipf("no_handler", "%s has no pull request", d.EventName()), nil
	}
	if pr.Draft && !t.settings.ReviewDrafts {
		return skipf("draft", "draft pull request"), nil
	}
	if len(t.settings.Branches) > 0 && !slices.ContainsFunc(t.settings.Branches, func(g string) bool { return globMatch(g, pr.Base.Ref) }) {
		return skipf("branch", "base branch %s is not in branches", pr.Base.Ref), nil
	}
	t.kind, t.number = &reviewKind, pr.Number
	t.subject, t.seen = pr.Head.SHA, pr.Head.SHA
	if t.ev.Action == "review_requested" {
		t.kind = &reviewRequestKind
		t.subject = pr.Head.SHA + " for " + requestedReviewer(t.ev)
	}
	t.targets = []int{t.number}
	if sk := threadFilters(&pr.thread, t.settings); sk != nil {
		return sk, nil
	}
	return p.pathFilter(ctx, t)
}

// requestedReviewer names whom a review was requested from.
func requestedReviewer(ev *event) string {
	switch {
	case ev.Reviewer != nil:
		return "@" + ev.Reviewer.Login
	case ev.Team != nil:
		return "team " + ev.Team.Name
	}
	return ""
}

// pathFilter skips a pull request that changes only ignored paths. The
// file list is kept for the prompt.
func (p *Pipeline) pathFilter(ctx context.Context, t *task) (*skip, error) {
	if len(t.settings.IgnorePaths) == 0 {
		return nil, nil
	}
	files, err := t.prFiles(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if !slices.ContainsFunc(t.settings.IgnorePaths, func(g string) bool { return globMatch(g, f.Name) }) {
			return nil, nil
		}
	}
	if t.changed > len(files) {
		return nil, nil // the files not listed may matter
	}
	return skipf("ignored_path", "all %d changed files match ignore_paths", len(files)), nil
}

// globMatch matches a path against a glob: "dir/**" matches everything
// under dir, a glob without a slash ("*.md") matches the base name, any
// other is path.Match on the whole path.
func globMatch(glob, name string) bool {
	if dir, ok := strings.CutSuffix(glob, "/**"); ok {
		return name == dir || strings.HasPrefix(name, dir+"/")
	}
	if !strings.Contains(glob, "/") {
		name = path.Base(name)
	}
	ok, _ := path.Match(glob, name)
	return ok
}
