package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/prompt"
	"github.com/hookwise/hookwise/internal/store"
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
	// listed holds each thread's comments, fetched at most once per run:
	// the prompt's history and the marker search read the same list.
	listed map[int][]gh.Comment
}

func (t *task) thread() string {
	if t.kind.name == kindWorkflowRun {
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

// comments lists thread number's comments once per run. Within a run the
// thread lease keeps other jobs from posting on it, so the list stays true
// for the marker search.
func (t *task) comments(ctx context.Context, p *Pipeline, number int) ([]gh.Comment, error) {
	if cs, ok := t.listed[number]; ok {
		return cs, nil
	}
	cs, err := p.github.ListComments(ctx, t.repo, number)
	if err != nil {
		return nil, fmt.Errorf("list comments: %w", err)
	}
	if t.listed == nil {
		t.listed = map[int][]gh.Comment{}
	}
	t.listed[number] = cs
	return cs, nil
}

func (t *task) allowed(ctx context.Context, p *Pipeline) ([]string, error) {
	if len(t.settings.LabelAllowlist) > 0 {
		return t.settings.LabelAllowlist, nil
	}
	if t.labels == nil {
		labels, err := p.github.RepoLabels(ctx, t.repo)
		if err != nil {
			return nil, fmt.Errorf("list labels: %w", err)
		}
		t.labels = append([]string{}, labels...)
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
	if user, err = p.prompts.Render(t.kind.user, data); err != nil {
		return "", "", permanentError{fmt.Errorf("render %s: %w", t.kind.user, err)}
	}
	return system, user, nil
}

// event is the part of a payload the handlers read.
type event struct {
	Action     string `json:"action"`
	Repository struct {
		FullName string `json:"full_name"`
		Name     string `json:"name"`
		Owner    struct {
			Login string `json:"login"`
		} `json:"owner"`
	} `json:"repository"`
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
	Sender      user                   `json:"sender"`
	Issue       *thread                `json:"issue"`
	PullRequest *pull                  `json:"pull_request"`
	Reviewer    *user                  `json:"requested_reviewer"`
	Team        *struct{ Name string } `json:"requested_team"`
	WorkflowRun *struct {
		ID           int64  `json:"id"`
		Name         string `json:"name"`
		HeadBranch   string `json:"head_branch"`
		HeadSHA      string `json:"head_sha"`
		HTMLURL      string `json:"html_url"`
		Conclusion   string `json:"conclusion"`
		PullRequests []struct {
			Number int `json:"number"`
		} `json:"pull_requests"`
	} `json:"workflow_run"`
}

type user struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

type thread struct {
	Number int     `json:"number"`
	Title  string  `json:"title"`
	Body   *string `json:"body"`
	User   user    `json:"user"`
	State  string  `json:"state"`
	Locked bool    `json:"locked"`
	Labels []struct {
		Name string `json:"name"`
	} `json:"labels"`
}

type pull struct {
	thread
	Draft bool `json:"draft"`
	Head  struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (th *thread) body() string {
	if th.Body == nil {
		return ""
	}
	return *th.Body
}

func (th *thread) labelNames() []string {
	var out []string
	for _, l := range th.Labels {
		out = append(out, l.Name)
	}
	return out
}

// plan decides whether d deserves a model call. It returns the task, or nil
// and the reason it deserves none.
func (p *Pipeline) plan(ctx context.Context, d store.Delivery) (*task, string, error) {
	var ev event
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return nil, "payload is not a JSON object of a known shape", nil
	}
	if ev.Repository.FullName == "" {
		return nil, "event has no repository", nil
	}
	settings := p.cfg.For(ev.Repository.FullName)
	if !settings.Enabled(d.Event, ev.Action) {
		return nil, fmt.Sprintf("%s not handled for this repository", d.EventName()), nil
	}
	repo := gh.Repo{Owner: ev.Repository.Owner.Login, Name: ev.Repository.Name, Installation: ev.Installation.ID}
	if reason := p.fromBot(ev.Sender); reason != "" {
		return nil, reason, nil
	}
	if ev.Sender.Type != "Bot" {
		self, err := p.github.Login(ctx, repo)
		if err != nil {
			return nil, "", fmt.Errorf("learn own login: %w", err)
		}
		if strings.EqualFold(self, ev.Sender.Login) {
			return nil, "sent by hookwise itself", nil
		}
	}
	t := &task{repo: repo, settings: settings, ev: &ev}
	switch {
	case d.Event == "issues" && ev.Issue != nil:
		if HasMarker(ev.Issue.body()) {
			return nil, "issue carries hookwise's marker", nil
		}
		t.kind, t.number = &issueKind, ev.Issue.Number
		t.targets = []int{t.number}
	case d.Event == "pull_request" && ev.PullRequest != nil:
		pr := ev.PullRequest
		if pr.Draft && !settings.ReviewDrafts {
			return nil, "draft pull request", nil
		}
		t.kind, t.number = &reviewKind, pr.Number
		t.subject = pr.Head.SHA
		if ev.Action == "review_requested" {
			t.kind = &reviewRequestKind
			reviewer := ""
			switch {
			case ev.Reviewer != nil:
				reviewer = "@" + ev.Reviewer.Login
			case ev.Team != nil:
				reviewer = "team " + ev.Team.Name
			}
			t.subject = pr.Head.SHA + " for " + reviewer
		}
		t.targets = []int{t.number}
	case d.Event == "workflow_run" && ev.WorkflowRun != nil:
		run := ev.WorkflowRun
		if run.Conclusion != "failure" {
			return nil, fmt.Sprintf("workflow run concluded %q, not failure", run.Conclusion), nil
		}
		t.kind, t.number = &workflowKind, int(run.ID)
		t.subject = fmt.Sprintf("run %d", run.ID)
		for _, pr := range run.PullRequests {
			t.targets = append(t.targets, pr.Number)
		}
	default:
		return nil, fmt.Sprintf("%s has no handler", d.EventName()), nil
	}
	return t, "", nil
}

func (p *Pipeline) fromBot(u user) string {
	switch {
	case u.Type == "Bot":
		return "sent by a bot (" + u.Login + ")"
	case strings.HasSuffix(u.Login, "[bot]"):
		return "sent by a bot (" + u.Login + ")"
	}
	for _, b := range p.cfg.GitHub.BotLogins {
		if strings.EqualFold(b, u.Login) {
			return "sent by a configured bot (" + u.Login + ")"
		}
	}
	return ""
}

// history returns the thread's earlier discussion, without hookwise's own
// comments, for context.
func (p *Pipeline) history(ctx context.Context, t *task) ([]prompt.Comment, error) {
	comments, err := t.comments(ctx, p, t.number)
	if err != nil {
		return nil, err
	}
	var out []prompt.Comment
	for _, c := range comments {
		if HasMarker(c.Body) {
			continue
		}
		out = append(out, prompt.Comment{Author: c.Author, Body: c.Body})
	}
	// The newest discussion matters most; keep the prompt bounded.
	if len(out) > 30 {
		out = out[len(out)-30:]
	}
	return out, nil
}
