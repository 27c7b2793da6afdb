package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hookwise/hookwise/internal/guard"
	"github.com/hookwise/hookwise/internal/prompt"
)

const (
	kindIssue         = "issue-analysis"
	kindReview        = "pull-request-review"
	kindReviewRequest = "review-request"
	kindWorkflowRun   = "workflow-run-analysis"
)

// kind is one sort of analysis: its prompts, its answer's schema and how the
// answer is written as a comment.
type kind struct {
	name         string
	system, user string // template names
	schema       map[string]any
	// maxTokens is what the answer can need: anthropic.max_tokens caps it.
	maxTokens int
	data      func(ctx context.Context, p *Pipeline, t *task) (any, error)
	render    func(t *task, a answer) string

	// The schema as the prompt shows it, and its size as the API counts
	// it, rendered once.
	schemaOnce  sync.Once
	schemaShown string
	schemaSize  int
}

// answer holds the fields of every kind's structured answer.
type answer struct {
	Classification string    `json:"classification"`
	Summary        string    `json:"summary"`
	Impact         string    `json:"impact"`
	Priority       string    `json:"priority"`
	Complexity     string    `json:"complexity"`
	Plan           []string  `json:"plan"`
	Questions      []string  `json:"questions"`
	Labels         []string  `json:"labels"`
	Invalid        bool      `json:"invalid"`
	CloseReason    string    `json:"close_reason"`
	Risk           string    `json:"risk"`
	Findings       []finding `json:"findings"`
	NotReviewed    []string  `json:"not_reviewed"`
	LikelyCause    string    `json:"likely_cause"`
	SuggestedFix   string    `json:"suggested_fix"`
	Flaky          bool      `json:"flaky"`
	// Truncated: the model's answer was cut at max_tokens and closed by
	// the Claude adapter; what it holds is complete, but fields may lack.
	Truncated bool `json:"truncated"`
}

type finding struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func str() map[string]any { return map[string]any{"type": "string"} }
func strs() map[string]any {
	return map[string]any{"type": "array", "items": str()}
}
func enum(values ...string) map[string]any {
	return map[string]any{"type": "string", "enum": values}
}

// object is a closed JSON schema object whose every property is required,
// as structured outputs expect.
func object(props map[string]any) map[string]any {
	var required []string
	for k := range props {
		required = append(required, k)
	}
	// Sorted, so the schema (in the cached prompt prefix and in the
	// request) is the same in every process.
	slices.Sort(required)
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

// renderSchema renders the schema once. Go marshals map keys sorted, so
// the text is the same in every process, as caching needs.
// labels reports whether k's answer chooses labels.
func (k *kind) labels() bool {
	_, ok := k.schema["properties"].(map[string]any)["labels"]
	return ok
}

func (k *kind) renderSchema() {
	k.schemaOnce.Do(func() {
		shown, _ := json.MarshalIndent(k.schema, "", "  ")
		compact, _ := json.Marshal(k.schema)
		k.schemaShown, k.schemaSize = string(shown), len(compact)
	})
}

// schemaChars is the size of the schema, which the API adds to the prompt.
func (k *kind) schemaChars() int {
	k.renderSchema()
	return k.schemaSize
}

// schemaText is the schema as the prompt shows it.
func (k *kind) schemaText() string {
	k.renderSchema()
	return k.schemaShown
}

var issueKind = kind{
	name: kindIssue, system: "issue.system", user: "issue.user", maxTokens: 1024,
	schema: object(map[string]any{
		"classification": enum("bug", "feature", "question", "documentation", "invalid"),
		"summary":        str(),
		"impact":         str(),
		"priority":       enum("critical", "high", "medium", "low"),
		"complexity":     enum("trivial", "small", "medium", "large"),
		"plan":           strs(),
		"questions":      strs(),
		"labels":         strs(),
		"invalid":        map[string]any{"type": "boolean"},
		"close_reason":   str(),
	}),
	data: func(ctx context.Context, p *Pipeline, t *task) (any, error) {
		th, allowed, err := p.context(ctx, t, t.ev.Issue)
		if err != nil {
			return nil, err
		}
		return prompt.IssueData{Thread: th, AllowedLabels: allowed}, nil
	},
	render: func(t *task, a answer) string {
		var b strings.Builder
		fmt.Fprintf(&b, "### hookwise triage: %s · priority %s · complexity %s\n\n%s\n", a.Classification, a.Priority, a.Complexity, field(a.Summary, longField))
		if a.Impact != "" {
			fmt.Fprintf(&b, "\n**Impact.** %s\n", field(a.Impact, shortField))
		}
		list(&b, "Suggested plan", a.Plan, true, maxItems)
		list(&b, "Questions for @"+t.ev.Issue.User.Login, a.Questions, false, maxItems)
		if t.closing && a.CloseReason != "" {
			fmt.Fprintf(&b, "\n%s\n", field(a.CloseReason, shortField))
		}
		return b.String()
	},
}

var reviewKind = kind{
	name: kindReview, system: "pull_request.system", user: "pull_request.user", maxTokens: 2048,
	schema: object(map[string]any{
		"summary": str(),
		"risk":    enum("low", "medium", "high"),
		"findings": map[string]any{"type": "array", "items": object(map[string]any{
			"file":     str(),
			"line":     map[string]any{"type": "integer"},
			"severity": enum("critical", "major", "minor", "nit"),
			"message":  str(),
		})},
		"labels":       strs(),
		"not_reviewed": strs(),
	}),
	data:   pullRequestData,
	render: renderReview,
}

var reviewRequestKind = kind{
	name: kindReviewRequest, system: "pull_request.system", user: "review_request.user", maxTokens: 2048,
	schema: reviewKind.schema,
	data:   pullRequestData,
	render: renderReview,
}

func pullRequestData(ctx context.Context, p *Pipeline, t *task) (any, error) {
	files, err := t.prFiles(ctx, p)
	if err != nil {
		return nil, err
	}
	pr := t.ev.PullRequest
	th, allowed, err := p.context(ctx, t, &pr.thread)
	if err != nil {
		return nil, err
	}
	d := prompt.PullRequestData{Thread: th, Base: pr.Base.Ref, Head: pr.Head.Ref, HeadSHA: pr.Head.SHA, AllowedLabels: allowed}
	if t.ev.Reviewer != nil {
		d.Reviewer = t.ev.Reviewer.Login
	} else if t.ev.Team != nil {
		d.Reviewer = t.ev.Team.Name
	}
	for _, f := range files {
		d.Files = append(d.Files, prompt.File{Name: f.Name, Status: f.Status, Additions: f.Additions, Deletions: f.Deletions, Patch: f.Patch})
	}
	d.MoreFiles = max(t.changed-len(files), 0)
	// The limits leave out what does not fit; the review names it as not
	// reviewed, never drops it silently.
	d = prompt.DefaultLimits().PullRequest(d)
	t.omitted = notShown(d)
	return d, nil
}

// context gathers what every thread prompt carries: the thread with its
// earlier discussion, and the labels the model may choose from.
func (p *Pipeline) context(ctx context.Context, t *task, th *thread) (prompt.Thread, []string, error) {
	comments, earlier, err := p.history(ctx, t)
	if err != nil {
		return prompt.Thread{}, nil, err
	}
	allowed, err := t.allowed(ctx, p)
	if err != nil {
		return prompt.Thread{}, nil, err
	}
	return prompt.Thread{Repo: t.repo.String(), Number: th.Number, Title: th.Title, Body: th.body(),
		Author: th.User.Login, Labels: th.labelNames(), Comments: comments, EarlierComments: earlier}, allowed, nil
}

func renderReview(t *task, a answer) string {
	var b strings.Builder
	pr := t.ev.PullRequest
	if t.ev.Action == "review_requested" && t.ev.Reviewer != nil {
		fmt.Fprintf(&b, "@%s, here is a first pass to help your review.\n\n", t.ev.Reviewer.Login)
	}
	fmt.Fprintf(&b, "### hookwise review of %s · risk %s\n\n%s\n", shortSHA(pr.Head.SHA), a.Risk, field(a.Summary, longField))
	findings := a.Findings[:min(len(a.Findings), maxItems)]
	if len(findings) > 0 {
		b.WriteString("\n| severity | where | finding |\n|---|---|---|\n")
		for _, f := range findings {
			where := strings.ReplaceAll(f.File, "`", "'")
			if f.Line > 0 {
				where = fmt.Sprintf("%s:%d", where, f.Line)
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s |\n", guard.Cell(f.Severity), guard.Cell(where), guard.Cell(field(f.Message, shortField)))
		}
	}
	if more := len(a.Findings) - len(findings); more > 0 {
		fmt.Fprintf(&b, "\n_%d more findings not shown._\n", more)
	}
	notReviewed := append(append([]string{}, t.omitted...), a.NotReviewed...)
	// Every file the prompt left out is named (the prompt's limits bound
	// them); the guard caps the comment whatever the model added.
	list(&b, "Not reviewed (over the prompt budget or without a textual diff)", dedupe(notReviewed), false, maxNotReviewed)
	fmt.Fprintf(&b, "\n_Reviewed head commit %s._\n", pr.Head.SHA)
	return b.String()
}

var workflowKind = kind{
	name: kindWorkflowRun, system: "workflow_run.system", user: "workflow_run.user", maxTokens: 1024,
	schema: object(map[string]any{
		"summary":       str(),
		"likely_cause":  str(),
		"suggested_fix": str(),
		"flaky":         map[string]any{"type": "boolean"},
	}),
	data: func(ctx context.Context, p *Pipeline, t *task) (any, error) {
		run := t.ev.WorkflowRun
		jobs, unread, err := p.github.WorkflowJobs(ctx, t.repo, run.ID, failedJob, prompt.DefaultLimits().Jobs)
		if err != nil {
			return nil, fmt.Errorf("list workflow jobs: %w", err)
		}
		d := prompt.WorkflowRunData{Repo: t.repo.String(), Name: run.Name, Branch: run.HeadBranch, HeadSHA: run.HeadSHA, URL: run.HTMLURL,
			Unexamined: unread}
		for _, j := range jobs {
			if j.Conclusion == "success" || j.Conclusion == "skipped" {
				continue
			}
			job := prompt.Job{Name: j.Name, Conclusion: j.Conclusion}
			for _, s := range j.Steps {
				if s.Conclusion == "failure" {
					job.FailedSteps = append(job.FailedSteps, s.Name)
				}
			}
			d.Jobs = append(d.Jobs, job)
		}
		return d, nil
	},
	render: func(t *task, a answer) string {
		run := t.ev.WorkflowRun
		var b strings.Builder
		fmt.Fprintf(&b, "### hookwise: why [%s](%s) failed on %s\n\n%s\n", linkText(run.Name), run.HTMLURL, shortSHA(run.HeadSHA), field(a.Summary, longField))
		fmt.Fprintf(&b, "\n**Likely cause.** %s\n\n**Suggested fix.** %s\n", field(a.LikelyCause, longField), field(a.SuggestedFix, longField))
		if a.Flaky {
			b.WriteString("\nThis looks like a flaky failure: a re-run may pass.\n")
		}
		return b.String()
	},
}

// The most characters of a field of the answer, and the most items of a
// list, that a comment shows; the total is capped again by the guard.
const (
	longField      = 6000
	shortField     = 2000
	maxItems       = 30
	maxNotReviewed = 300
)

// field is one of the answer's text fields, capped, saying what was cut.
func field(s string, max int) string {
	return guard.Cap(s, max, fmt.Sprintf("hookwise shows at most %d characters here", max))
}

// linkText escapes the brackets that would end a link's text early.
func linkText(s string) string {
	return strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, "\n", " ").Replace(s)
}

// list writes items as a Markdown list under title, at most most of them.
func list(b *strings.Builder, title string, items []string, numbered bool, most int) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(b, "\n**%s**\n\n", title)
	for i, it := range items[:min(len(items), most)] {
		// An item is one line of the list.
		it = strings.Join(strings.Fields(field(it, shortField)), " ")
		if numbered {
			fmt.Fprintf(b, "%d. %s\n", i+1, it)
		} else {
			fmt.Fprintf(b, "- %s\n", it)
		}
	}
	if more := len(items) - most; more > 0 {
		fmt.Fprintf(b, "\n_%d more not shown._\n", more)
	}
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
