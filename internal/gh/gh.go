// Package gh is hookwise's GitHub adapter: a small client over go-github
// that authenticates with a personal access token or as a GitHub App,
// follows pagination, and turns every failure into an *Error that says
// whether retrying can help and when.
package gh

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v84/github"
	"github.com/hookwise/hookwise/internal/pace"
)

// Options configures a Client. Set Token, or AppID and PrivateKey.
type Options struct {
	// BaseURL is the REST API root (GITHUB_API_URL), for example
	// https://ghe.example.com/api/v3; "" means https://api.github.com/.
	BaseURL string
	// Token is a personal access token (or any token GitHub accepts as
	// "Authorization: Bearer").
	Token string
	// AppID and PrivateKey (PEM) authenticate as a GitHub App; each Repo then
	// names the installation whose token is used.
	AppID      int64
	PrivateKey []byte
	// HTTPClient carries the requests; nil means one with a 30 s timeout.
	HTTPClient *http.Client
	// UserAgent is sent with every request; default "hookwise".
	UserAgent string
}

// Repo names a repository and, with App authentication, the installation
// that has access to it. With token authentication Installation is ignored.
type Repo struct {
	Owner        string
	Name         string
	Installation int64
}

// String returns "owner/name".
func (r Repo) String() string { return r.Owner + "/" + r.Name }

// Comment is an issue or pull request comment.
type Comment struct {
	ID         int64
	Body       string
	Author     string // login
	AuthorType string // "User", "Bot" or "Organization"
}

// File is one file changed by a pull request.
type File struct {
	Name      string
	Status    string // added, removed, modified, renamed, copied, changed, unchanged
	Additions int
	Deletions int
	Patch     string // unified diff hunk; empty for binary or very large files
}

// Job is one job of a workflow run.
type Job struct {
	Name       string
	Conclusion string
	URL        string // the job's page on github.com
	Steps      []Step
}

// Step is one step of a workflow job.
type Step struct {
	Name       string
	Conclusion string
}

// Client talks to GitHub's REST API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	hc    *http.Client
	ua    string
	token string // PAT; "" with App authentication

	pat *github.Client // token authentication
	app *appAuth       // App authentication

	loginMu sync.Mutex
	login   string
}

// perPage is the largest page GitHub serves, to make the fewest requests.
const perPage = 100

// maxJobPages bounds the pages of jobs read for one workflow run, which
// may have thousands.
const maxJobPages = 10

// New returns a Client for opts. It fails on missing or ambiguous
// credentials and on a private key it cannot parse; errors never contain
// the token or the key.
func New(opts Options) (*Client, error) {
	hasApp := opts.AppID != 0 || len(opts.PrivateKey) > 0
	switch {
	case opts.Token == "" && !hasApp:
		return nil, errors.New("gh: no credentials: set a token, or an app id and private key")
	case opts.Token != "" && hasApp:
		return nil, errors.New("gh: both a token and app credentials are set; use one")
	case hasApp && opts.AppID <= 0:
		return nil, errors.New("gh: app private key set without a valid app id")
	case hasApp && len(opts.PrivateKey) == 0:
		return nil, errors.New("gh: app id set without a private key")
	}

	raw := opts.BaseURL
	if raw == "" {
		raw = "https://api.github.com/"
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("gh: base URL %q: want an absolute http(s) URL", raw)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	c := &Client{base: base, hc: opts.HTTPClient, ua: opts.UserAgent, token: opts.Token}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.ua == "" {
		c.ua = "hookwise"
	}

	if opts.Token != "" {
		tok := opts.Token
		c.pat = c.newGitHub("token", func(context.Context) (string, error) { return tok, nil })
		return c, nil
	}
	key, err := parsePrivateKey(opts.PrivateKey)
	if err != nil {
		return nil, err
	}
	a := &appAuth{id: opts.AppID, key: key, now: time.Now, newClient: c.newGitHub, installs: make(map[int64]*installation)}
	a.jwtClient = c.newGitHub("app", func(context.Context) (string, error) { return a.jwt() })
	c.app = a
	return c, nil
}

// newGitHub returns a go-github client whose requests carry token().
func (c *Client) newGitHub(key string, token func(context.Context) (string, error)) *github.Client {
	hc := *c.hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &authTransport{base: base, key: key, token: token}
	g := github.NewClient(&hc)
	u := *c.base
	g.BaseURL = &u
	g.UserAgent = c.ua
	return g
}

// client picks the go-github client for r.
func (c *Client) client(r Repo) (*github.Client, error) {
	if c.pat != nil {
		return c.pat, nil
	}
	if r.Installation <= 0 {
		return nil, fmt.Errorf("gh: %s: no app installation id", r)
	}
	return c.app.client(r.Installation), nil
}

// WriteKey names the credential r's writes go out under, as the pacer
// keys it: GitHub meters writes per token and per App installation.
func (c *Client) WriteKey(r Repo) string {
	if c.pat != nil {
		return "token"
	}
	return installationKey(r.Installation)
}

func installationKey(id int64) string { return fmt.Sprintf("installation-%d", id) }

// ListComments returns the newest comments on issue or pull request
// number, at most newest of them, oldest first, and how many the thread
// has. GitHub lists comments oldest first; past one page, the first page's
// Link header names the last, which is read next, then the pages before it
// until newest are in hand: a thread of 10,000 comments costs two requests
// for the newest 100, three when they span two pages.
func (c *Client) ListComments(ctx context.Context, r Repo, number, newest int) ([]Comment, int, error) {
	g, err := c.client(r)
	if err != nil {
		return nil, 0, err
	}
	page := func(p int) ([]Comment, *github.Response, error) {
		opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: perPage, Page: p}}
		cs, resp, err := g.Issues.ListComments(ctx, r.Owner, r.Name, number, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("list comments on %s#%d: %w", r, number, toError(err, resp, c.token))
		}
		out := make([]Comment, 0, len(cs))
		for _, cm := range cs {
			out = append(out, toComment(cm))
		}
		return out, resp, nil
	}
	first, resp, err := page(1)
	if err != nil {
		return nil, 0, err
	}
	if resp.NextPage == 0 {
		return newestOf(first, newest), len(first), nil
	}
	last := resp.LastPage
	if last <= resp.NextPage {
		// GitHub names the last page; without it, the next is the last known.
		last = resp.NextPage
	}
	out, _, err := page(last)
	if err != nil {
		return nil, 0, err
	}
	total := (last-1)*perPage + len(out)
	for p := last - 1; p >= 1 && len(out) < newest; p-- {
		older := first
		if p > 1 {
			if older, _, err = page(p); err != nil {
				return nil, 0, err
			}
		}
		out = append(older, out...)
	}
	return newestOf(out, newest), total, nil
}

// newestOf is the last n of cs, without the duplicates a comment posted
// between two page reads can make.
func newestOf(cs []Comment, n int) []Comment {
	seen := make(map[int64]bool, len(cs))
	out := cs[:0:0]
	for _, c := range cs {
		if !seen[c.ID] {
			seen[c.ID] = true
			out = append(out, c)
		}
	}
	return out[max(0, len(out)-n):]
}

// CreateComment posts body on issue or pull request number.
func (c *Client) CreateComment(ctx context.Context, r Repo, number int, body string) (Comment, error) {
	g, err := c.client(r)
	if err != nil {
		return Comment{}, err
	}
	cm, resp, err := g.Issues.CreateComment(ctx, r.Owner, r.Name, number, &github.IssueComment{Body: &body})
	if err != nil {
		return Comment{}, fmt.Errorf("create comment on %s#%d: %w", r, number, toError(err, resp, c.token))
	}
	return toComment(cm), nil
}

// EditComment replaces the body of comment id.
func (c *Client) EditComment(ctx context.Context, r Repo, id int64, body string) error {
	g, err := c.client(r)
	if err != nil {
		return err
	}
	_, resp, err := g.Issues.EditComment(ctx, r.Owner, r.Name, id, &github.IssueComment{Body: &body})
	if err != nil {
		return fmt.Errorf("edit comment %d in %s: %w", id, r, toError(err, resp, c.token))
	}
	return nil
}

// RepoLabels returns the names of the first most labels defined in r, in
// GitHub's order; it reads no further pages than those take.
func (c *Client) RepoLabels(ctx context.Context, r Repo, most int) ([]string, error) {
	g, err := c.client(r)
	if err != nil {
		return nil, err
	}
	var out []string
	opts := &github.ListOptions{PerPage: min(perPage, max(most, 1))}
	for {
		ls, resp, err := g.Issues.ListLabels(ctx, r.Owner, r.Name, opts)
		if err != nil {
			return nil, fmt.Errorf("list labels of %s: %w", r, toError(err, resp, c.token))
		}
		for _, l := range ls {
			out = append(out, l.GetName())
		}
		if resp.NextPage == 0 || len(out) >= most {
			return out[:min(len(out), most)], nil
		}
		opts.Page = resp.NextPage
	}
}

// AddLabels adds labels to issue or pull request number. GitHub creates
// labels the repository does not have yet, so callers filter first.
func (c *Client) AddLabels(ctx context.Context, r Repo, number int, labels []string) error {
	if len(labels) == 0 {
		return nil
	}
	g, err := c.client(r)
	if err != nil {
		return err
	}
	_, resp, err := g.Issues.AddLabelsToIssue(ctx, r.Owner, r.Name, number, labels)
	if err != nil {
		return fmt.Errorf("add labels to %s#%d: %w", r, number, toError(err, resp, c.token))
	}
	return nil
}

// CloseIssue closes issue number with reason ("completed", "not_planned",
// "duplicate"; "" leaves GitHub's default, completed) and adds labels to
// it, in one write.
func (c *Client) CloseIssue(ctx context.Context, r Repo, number int, reason string, labels []string) error {
	g, err := c.client(r)
	if err != nil {
		return err
	}
	req := &github.IssueRequest{State: github.Ptr("closed")}
	if reason != "" {
		req.StateReason = &reason
	}
	if len(labels) > 0 {
		// An edit replaces the issue's labels: read them first, so that
		// one write adds the new ones and closes (a read costs no write).
		is, resp, err := g.Issues.Get(ctx, r.Owner, r.Name, number)
		if err != nil {
			return fmt.Errorf("read %s#%d: %w", r, number, toError(err, resp, c.token))
		}
		all := make([]string, 0, len(is.Labels)+len(labels))
		for _, l := range is.Labels {
			all = append(all, l.GetName())
		}
		for _, l := range labels {
			if !slices.ContainsFunc(all, func(have string) bool { return strings.EqualFold(have, l) }) {
				all = append(all, l)
			}
		}
		req.Labels = &all
	}
	_, resp, err := g.Issues.Edit(ctx, r.Owner, r.Name, number, req)
	if err != nil {
		return fmt.Errorf("close %s#%d: %w", r, number, toError(err, resp, c.token))
	}
	return nil
}

// PullRequestFiles returns the first most files changed by pull request
// number, and how many GitHub lists (at most 3,000). Past the pages most
// takes, the count comes from one request of one file per page, whose Link
// header names the last page: the count.
func (c *Client) PullRequestFiles(ctx context.Context, r Repo, number, most int) ([]File, int, error) {
	g, err := c.client(r)
	if err != nil {
		return nil, 0, err
	}
	var out []File
	opts := &github.ListOptions{PerPage: min(perPage, max(most, 1))}
	for {
		fs, resp, err := g.PullRequests.ListFiles(ctx, r.Owner, r.Name, number, opts)
		if err != nil {
			return nil, 0, fmt.Errorf("list files of %s#%d: %w", r, number, toError(err, resp, c.token))
		}
		for _, f := range fs {
			out = append(out, File{
				Name: f.GetFilename(), Status: f.GetStatus(),
				Additions: f.GetAdditions(), Deletions: f.GetDeletions(), Patch: f.GetPatch(),
			})
		}
		if resp.NextPage == 0 {
			return out, len(out), nil
		}
		if len(out) >= most {
			break
		}
		opts.Page = resp.NextPage
	}
	_, resp, err := g.PullRequests.ListFiles(ctx, r.Owner, r.Name, number, &github.ListOptions{PerPage: 1})
	if err != nil {
		return nil, 0, fmt.Errorf("count files of %s#%d: %w", r, number, toError(err, resp, c.token))
	}
	return out[:most], max(resp.LastPage, len(out)), nil
}

// WorkflowJobs returns the jobs of the latest attempt of workflow run runID
// that keep accepts, at most most of them, and how many of the run's jobs
// were not read: reading stops once most are kept, or after 10 pages
// (1,000 jobs). A nil keep keeps every job.
func (c *Client) WorkflowJobs(ctx context.Context, r Repo, runID int64, keep func(Job) bool, most int) ([]Job, int, error) {
	g, err := c.client(r)
	if err != nil {
		return nil, 0, err
	}
	var out []Job
	read := 0
	opts := &github.ListWorkflowJobsOptions{ListOptions: github.ListOptions{PerPage: perPage}}
	for pages := 1; ; pages++ {
		js, resp, err := g.Actions.ListWorkflowJobs(ctx, r.Owner, r.Name, runID, opts)
		if err != nil {
			return nil, 0, fmt.Errorf("list jobs of run %d in %s: %w", runID, r, toError(err, resp, c.token))
		}
		for _, j := range js.Jobs {
			read++
			job := Job{Name: j.GetName(), Conclusion: j.GetConclusion(), URL: j.GetHTMLURL()}
			for _, s := range j.Steps {
				job.Steps = append(job.Steps, Step{Name: s.GetName(), Conclusion: s.GetConclusion()})
			}
			if len(out) < most && (keep == nil || keep(job)) {
				out = append(out, job)
			}
		}
		if resp.NextPage == 0 || len(out) >= most || pages == maxJobPages {
			return out, max(js.GetTotalCount()-read, 0), nil
		}
		opts.Page = resp.NextPage
	}
}

// Login returns the login hookwise acts as, to recognise its own events:
// the token's user, or "<app-slug>[bot]" for an App (GET /user is refused
// to installation tokens, so the slug comes from GET /app). The first
// success is cached; r only matters for interface symmetry.
func (c *Client) Login(ctx context.Context, r Repo) (string, error) {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.login != "" {
		return c.login, nil
	}
	if c.pat != nil {
		u, resp, err := c.pat.Users.Get(ctx, "")
		if err != nil {
			return "", fmt.Errorf("get authenticated user: %w", toError(err, resp, c.token))
		}
		c.login = u.GetLogin()
	} else {
		app, resp, err := c.app.jwtClient.Apps.Get(ctx, "")
		if err != nil {
			return "", fmt.Errorf("get app: %w", toError(err, resp, c.token))
		}
		c.login = app.GetSlug() + "[bot]"
	}
	return c.login, nil
}

func toComment(c *github.IssueComment) Comment {
	return Comment{ID: c.GetID(), Body: c.GetBody(), Author: c.GetUser().GetLogin(), AuthorType: c.GetUser().GetType()}
}

// Error is a failed GitHub request: a non-2xx answer, or no answer at all
// (Status 0). Use errors.As to find it under the adapter's wrapping, and
// Temporary to decide between retrying and giving up.
type Error struct {
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Message is GitHub's message (or the network error), with anything
	// that looks like a credential removed.
	Message string
	// RequestID is x-github-request-id, for GitHub support.
	RequestID string
	// RetryAfter is how long GitHub asked us to wait (retry-after, or until
	// x-ratelimit-reset when the limit is spent); 0 when it did not say.
	RetryAfter time.Duration
	// RateLimited is set for primary and secondary rate limits.
	RateLimited bool
	// Err is the underlying error for Status 0 (network, context).
	Err error
}

// Error describes the failure. It never contains a token.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("github: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	b.WriteString(e.Message)
	if e.RateLimited {
		b.WriteString(" (rate limited)")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the underlying network or context error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether the same request may succeed later: network
// failures and timeouts, 408, 409, 429, 5xx and rate limits. A cancelled
// context is not temporary (the caller gave up), nor are 400, 401, 403
// without a rate limit, 404, 410 and 422.
func (e *Error) Temporary() bool {
	switch {
	case e.Status == 0:
		return !errors.Is(e.Err, context.Canceled)
	case e.RateLimited:
		return true
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusConflict,
		e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}

// RetryAfterDuration is how long the job should wait before trying again
// without counting an attempt: a rate limit, or an open circuit (which
// arrives as a transport error). 0 for everything else.
func (e *Error) RetryAfterDuration() time.Duration {
	if e.RateLimited {
		return max(e.RetryAfter, time.Second)
	}
	var ra interface{ RetryAfterDuration() time.Duration }
	if e.Status == 0 && errors.As(e.Err, &ra) {
		return ra.RetryAfterDuration()
	}
	return 0
}

// RetryDelay is the least wait GitHub asked for before a retry of a
// failure that is not a rate limit (a 503 with retry-after).
func (e *Error) RetryDelay() time.Duration {
	if e.RateLimited {
		return 0
	}
	return e.RetryAfter
}

// secondaryDefaultWait is what GitHub's documentation says to wait after a
// secondary rate limit that came without retry-after.
const secondaryDefaultWait = time.Minute

// toError turns what go-github returned into an *Error. token is removed
// from every message.
func toError(err error, resp *github.Response, token string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e // from our own transport (installation token), already classified
	}
	a := answerOf(err, resp)
	if a.hr == nil {
		return &Error{Message: redact(err.Error(), token), Err: err}
	}
	e = &Error{Status: a.hr.StatusCode, Message: a.msg, RequestID: a.hr.Header.Get(github.HeaderRequestID)}
	if e.Message == "" {
		e.Message = http.StatusText(a.hr.StatusCode)
	}
	e.Message = redact(e.Message, token)
	a.limits(e, time.Now())
	return e
}

// answer is what go-github's error says of GitHub's answer.
type answer struct {
	hr        *http.Response
	msg       string
	rate      *github.Rate   // a primary rate limit, possibly known only client-side
	secondary bool           // a secondary rate limit
	retry     *time.Duration // go-github's reading of a secondary limit's wait
}

func answerOf(err error, resp *github.Response) answer {
	var (
		rle   *github.RateLimitError
		abuse *github.AbuseRateLimitError
		er    *github.ErrorResponse
	)
	switch {
	case errors.As(err, &rle):
		return answer{hr: rle.Response, msg: rle.Message, rate: &rle.Rate}
	case errors.As(err, &abuse):
		return answer{hr: abuse.Response, msg: abuse.Message, retry: abuse.RetryAfter, secondary: true}
	case errors.As(err, &er):
		msg := er.Message
		for _, d := range er.Errors {
			switch {
			case d.Message != "":
				msg += "; " + d.Message
			case d.Field != "":
				msg += fmt.Sprintf("; %s.%s: %s", d.Resource, d.Field, d.Code)
			}
		}
		return answer{hr: er.Response, msg: msg}
	case resp != nil && resp.Response != nil && (resp.StatusCode < 200 || resp.StatusCode > 299):
		return answer{hr: resp.Response, msg: err.Error()}
	}
	return answer{}
}

// limits sets whether e is a rate limit and how long it asks to wait:
// retry-after, else the primary limit's reset, else a minute for a
// secondary limit (GitHub's advice); never more than pace.MaxRetryAfter,
// so that no answer snoozes a job for a day.
func (a answer) limits(e *Error, now time.Time) {
	h, status := a.hr.Header, a.hr.StatusCode
	limited := status == http.StatusForbidden || status == http.StatusTooManyRequests
	if d, ok := pace.RetryAfter(h, now); ok {
		e.RetryAfter, e.RateLimited = d, limited
	}
	if limited && h.Get(github.HeaderRateRemaining) == "0" {
		e.RateLimited = true
		if s, err := strconv.ParseInt(h.Get(github.HeaderRateReset), 10, 64); err == nil && e.RetryAfter == 0 {
			e.RetryAfter = untilReset(time.Unix(s, 0), now)
		}
	}
	if a.rate != nil {
		e.RateLimited = true
		if e.RetryAfter == 0 {
			e.RetryAfter = untilReset(a.rate.Reset.Time, now)
		}
	}
	if a.secondary || (limited && strings.Contains(strings.ToLower(a.msg), "secondary rate limit")) {
		e.RateLimited = true
		if a.retry != nil && e.RetryAfter == 0 {
			e.RetryAfter = max(*a.retry, 0)
		}
		if e.RetryAfter == 0 {
			e.RetryAfter = secondaryDefaultWait
		}
	}
	if status == http.StatusTooManyRequests {
		e.RateLimited = true
	}
	e.RetryAfter = min(e.RetryAfter, pace.MaxRetryAfter)
}

// untilReset is the wait until a rate-limit reset, rounded up to whole
// seconds (the header has second precision), never negative.
func untilReset(reset, now time.Time) time.Duration {
	if reset.IsZero() || !reset.After(now) {
		return 0
	}
	return reset.Sub(now).Truncate(time.Second) + time.Second
}
