package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/prompt"
)

// task is one planned analysis: which thread, which kind, and how to build
// its prompt.
type task struct {
	kind     *kind
	repo     gh.Repo
	number   int    // the thread analysed (issue or pull request number, or run id)
	subject  string // what on the thread is answered: a head commit, a reviewer, a run
	targets  []int  // the threads the answer is posted on
	settings config.Settings
	ev       *event
	labels   []string // the repository's labels, fetched at most once
	omitted  []string // files left out of the prompt
	files    []gh.File
	// changed is how many files the pull request changes, as GitHub
	// counts them; files holds the first of them.
	changed int
	// seen is what the analysis looks at, to compare with a later event:
	// an issue's title and body, a pull request's head, a run.
	seen string
	// listed holds each thread's newest comments, fetched at most once per
	// run: the prompt's history and the marker search read the same list.
	// unlisted counts the older ones.
	listed   map[int][]gh.Comment
	unlisted map[int]int
	// closing says the answer closes the issue (see mayClose), which its
	// comment then explains.
	closing bool
}

// updated is when GitHub last updated the thread's object as the payload
// shows it (the issue's, pull request's or workflow run's updated_at), or
// received where the payload does not say. It orders a thread's deliveries
// (see store.Newer).
func (t *task) updated(received time.Time) time.Time {
	var at string
	switch {
	case t.ev.Issue != nil:
		at = t.ev.Issue.UpdatedAt
	case t.ev.PullRequest != nil:
		at = t.ev.PullRequest.UpdatedAt
	case t.ev.WorkflowRun != nil:
		at = t.ev.WorkflowRun.UpdatedAt
	}
	if u, err := time.Parse(time.RFC3339, at); err == nil {
		return u
	}
	return received
}

func (t *task) thread() string {
	if t.kind == &workflowKind {
		return fmt.Sprintf("%s/runs/%d", t.repo, t.number)
	}
	return fmt.Sprintf("%s#%d", t.repo, t.number)
}

// key names what a comment on thread number answers; it is the marker's text
// and the ledger's key, so a retry finds the comment again.
func (t *task) key(number int) string {
	k := fmt.Sprintf("%s %s#%d", t.kind.name, t.repo, number)
	if t.subject != "" {
		k += " " + t.subject
	}
	return k
}

// commentsListed is how many of a thread's newest comments are read: a
// page, enough for the prompt's comments (prompt.Limits.Comments) and for
// hookwise's own among them. The marker search looks for a comment whose
// ledger row is missing: one posted by a run that crashed before recording
// it, moments before this one, which is among them; or one whose row
// retention pruned, which on a thread with a hundred comments since is
// not, and a new comment is posted instead of editing it.
const commentsListed = 100

// comments lists thread number's newest comments once per run. Within a
// run the thread lease keeps other jobs from posting on it, so the list
// stays true for the marker search.
func (t *task) comments(ctx context.Context, p *Pipeline, number int) ([]gh.Comment, error) {
	if cs, ok := t.listed[number]; ok {
		return cs, nil
	}
	cs, total, err := p.github.ListComments(ctx, t.repo, number, commentsListed)
	if err != nil {
		return nil, fmt.Errorf("list comments: %w", err)
	}
	if t.listed == nil {
		t.listed, t.unlisted = map[int][]gh.Comment{}, map[int]int{}
	}
	t.listed[number], t.unlisted[number] = cs, max(total-len(cs), 0)
	return cs, nil
}

// prFiles lists the pull request's changed files once per run, as many as
// the prompt can name.
func (t *task) prFiles(ctx context.Context, p *Pipeline) ([]gh.File, error) {
	if t.files == nil {
		files, changed, err := p.github.PullRequestFiles(ctx, t.repo, t.number, prompt.DefaultLimits().Files)
		if err != nil {
			return nil, fmt.Errorf("list pull request files: %w", err)
		}
		t.files, t.changed = append([]gh.File{}, files...), changed
	}
	return t.files, nil
}

// allowed are the labels hookwise may apply in t's repository: the
// configured allowlist, or else the repository's conventional triage
// labels. The prompt offers these; labelsFor narrows them for outsiders.
func (t *task) allowed(ctx context.Context, p *Pipeline) ([]string, error) {
	if len(t.settings.LabelAllowlist) > 0 {
		return t.settings.LabelAllowlist, nil
	}
	if t.labels == nil {
		labels, err := p.github.RepoLabels(ctx, t.repo, triageScan)
		if err != nil {
			return nil, fmt.Errorf("list labels: %w", err)
		}
		t.labels = slices.DeleteFunc(slices.Clone(labels), func(l string) bool { return !isTriageLabel(l) })
		if t.labels == nil {
			t.labels = []string{}
		}
	}
	return t.labels, nil
}

func (t *task) prompt(ctx context.Context, p *Pipeline) (system, user string, err error) {
	data, err := t.kind.data(ctx, p, t)
	if err != nil {
		return "", "", err
	}
	if system, err = p.prompts.Render(t.kind.system, data); err != nil {
		return "", "", permanentError{fmt.Errorf("render %s: %w", t.kind.system, err)}
	}
	// The instructions, then the repository's context and the answer's
	// schema: everything the same across a repository's threads comes
	// first, as one block the API caches.
	repo := prompt.RepoData{Repo: t.repo.String(), Context: t.settings.Context, Schema: t.kind.schemaText()}
	if t.kind.labels() {
		repo.Labels = true
		if repo.AllowedLabels, err = t.allowed(ctx, p); err != nil {
			return "", "", err
		}
	}
	rendered, err := p.prompts.Render("repository.system", repo)
	if err != nil {
		return "", "", permanentError{fmt.Errorf("render repository.system: %w", err)}
	}
	system += "\n\n" + rendered
	if user, err = p.prompts.Render(t.kind.user, data); err != nil {
		return "", "", permanentError{fmt.Errorf("render %s: %w", t.kind.user, err)}
	}
	return system, user, nil
}

// history returns the thread's earlier discussion, without hookwise's own
// comments, for context, and how many older comments were not read. A
// stranger's comment that carries a marker is discussion like any other.
func (p *Pipeline) history(ctx context.Context, t *task) ([]prompt.Comment, int, error) {
	_, others, err := p.commentsByAuthor(ctx, t, t.number)
	if err != nil {
		return nil, 0, err
	}
	var out []prompt.Comment
	for _, c := range others {
		out = append(out, prompt.Comment{Author: c.Author, Body: c.Body})
	}
	return out, t.unlisted[t.number], nil
}
