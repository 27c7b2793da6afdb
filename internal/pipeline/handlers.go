package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"

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
		UpdatedAt    string `json:"updated_at"`
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
	Number    int     `json:"number"`
	UpdatedAt string  `json:"updated_at"`
	Title     string  `json:"title"`
	Body      *string `json:"body"`
	User      user    `json:"user"`
	State     string  `json:"state"`
	Locked    bool    `json:"locked"`
	// Association is the author's relation to the repository (OWNER,
	// MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR, NONE…).
	Association string `json:"author_association"`
	Labels      []struct {
		Name string `json:"name"`
	} `json:"labels"`
}

type pull struct {
	thread
	Draft bool `json:"draft"`
	Head  struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo *struct {
			FullName string `json:"full_name"`
		} `json:"repo"` // null when the fork is gone
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

// plan decides whether d deserves a model call. It returns the task, or nil
// and why it deserves none.
func (p *Pipeline) plan(ctx context.Context, d store.Delivery) (*task, *skip, error) {
	var ev event
	if err := json.Unmarshal(d.Payload, &ev); err != nil {
		return nil, skipf("bad_payload", "payload is not a JSON object of a known shape"), nil
	}
	if ev.Repository.FullName == "" {
		return nil, skipf("no_repository", "event has no repository"), nil
	}
	if sk := notAllowed(p.cfg.GitHub, &ev); sk != nil {
		return nil, sk, nil
	}
	settings := p.cfg.For(ev.Repository.FullName)
	if !slices.Contains(config.SupportedEvents(), d.EventName()) {
		if adminActions[d.Action] {
			return nil, skipf("admin", "%s is bookkeeping, not content", d.EventName()), nil
		}
		return nil, skipf("no_handler", "%s has no handler", d.EventName()), nil
	}
	if !settings.Enabled(d.Event, ev.Action) {
		return nil, skipf("not_enabled", "%s not enabled for this repository", d.EventName()), nil
	}
	repo := gh.Repo{Owner: ev.Repository.Owner.Login, Name: ev.Repository.Name, Installation: ev.Installation.ID}
	if sk := p.fromBot(ev.Sender); sk != nil {
		return nil, sk, nil
	}
	if ev.Sender.Type != "Bot" {
		self, err := p.github.Login(ctx, repo)
		if err != nil {
			return nil, nil, fmt.Errorf("learn own login: %w", err)
		}
		if strings.EqualFold(self, ev.Sender.Login) {
			return nil, skipf("self", "sent by hookwise itself"), nil
		}
	}
	if slices.ContainsFunc(settings.IgnoreAuthors, func(a string) bool { return strings.EqualFold(a, ev.Sender.Login) }) {
		return nil, skipf("ignored_author", "sender %s is in ignore_authors", ev.Sender.Login), nil
	}
	t := &task{repo: repo, settings: settings, ev: &ev}
	var th *thread
	switch {
	case d.Event == "issues" && ev.Issue != nil:
		th = ev.Issue
		if HasMarker(th.body()) {
			return nil, skipf("marker", "issue carries hookwise's marker"), nil
		}
		if n := contentChars(th.Title + " " + th.body()); n < settings.MinContentChars {
			return nil, skipf("low_content", "title and body have %d letters or digits (min_content_chars %d)", n, settings.MinContentChars), nil
		}
		t.kind, t.number = &issueKind, th.Number
		t.subject = ""
		t.seen = th.Title + "\n\n" + th.body()
		t.targets = []int{t.number}
	case d.Event == "pull_request" && ev.PullRequest != nil:
		pr := ev.PullRequest
		th = &pr.thread
		if pr.Draft && !settings.ReviewDrafts {
			return nil, skipf("draft", "draft pull request"), nil
		}
		if len(settings.Branches) > 0 && !slices.ContainsFunc(settings.Branches, func(g string) bool { return globMatch(g, pr.Base.Ref) }) {
			return nil, skipf("branch", "base branch %s is not in branches", pr.Base.Ref), nil
		}
		t.kind, t.number = &reviewKind, pr.Number
		t.subject, t.seen = pr.Head.SHA, pr.Head.SHA
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
			return nil, skipf("not_failure", "workflow run concluded %q, not failure", run.Conclusion), nil
		}
		t.kind, t.number = &workflowKind, int(run.ID)
		t.subject = fmt.Sprintf("run %d", run.ID)
		t.seen = t.subject
		for _, pr := range run.PullRequests {
			t.targets = append(t.targets, pr.Number)
		}
	default:
		return nil, skipf("no_handler", "%s has no handler", d.EventName()), nil
	}
	if th != nil {
		if sk := threadFilters(th, settings); sk != nil {
			return nil, sk, nil
		}
	}
	if t.kind == &reviewKind || t.kind == &reviewRequestKind {
		if sk, err := p.pathFilter(ctx, t); sk != nil || err != nil {
			return nil, sk, err
		}
	}
	return t, nil, nil
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

// contentChars counts the letters and digits of s outside HTML comments,
// which issue templates use for their instructions.
func contentChars(s string) int {
	n := 0
	for {
		before, rest, found := strings.Cut(s, "<!--")
		for _, r := range before {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				n++
			}
		}
		if !found {
			return n
		}
		_, s, found = strings.Cut(rest, "-->")
		if !found {
			return n
		}
	}
}

// changed is how many characters differ between a and b, ignoring
// whitespace: what is left of the longer once their common prefix and
// suffix are taken away.
func changed(a, b string) int {
	a, b = strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " ")
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	return max(len(a), len(b)) - pre - suf
}

func (p *Pipeline) fromBot(u user) *skip {
	if u.Type == "Bot" || strings.HasSuffix(u.Login, "[bot]") {
		return skipf("bot", "sent by a bot (%s)", u.Login)
	}
	for _, b := range p.cfg.GitHub.BotLogins {
		if strings.EqualFold(b, u.Login) {
			return skipf("bot", "sent by a configured bot (%s)", u.Login)
		}
	}
	return nil
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
