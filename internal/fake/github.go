package fake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GitHubOptions configures a fake GitHub. The zero value is usable: no token
// is accepted until one is listed in Tokens or issued to an App installation.
type GitHubOptions struct {
	// Tokens are the personal access tokens the fake accepts, sent as
	// "Authorization: Bearer <tok>" or "Authorization: token <tok>". Each
	// authenticates as BotLogin.
	Tokens []string
	// BotLogin is the login of the user behind Tokens; default "hookwise-bot".
	BotLogin string
	// Latency delays every response, to make timeouts and concurrency visible.
	Latency time.Duration
	// AppID and AppPublicKey enable GitHub App authentication: the JWT sent
	// to /app endpoints must be signed RS256 by the matching private key and
	// carry iss = AppID. With AppPublicKey nil, any bearer token is accepted
	// there (its signature is not checked).
	AppID        int64
	AppPublicKey *rsa.PublicKey
	// AppSlug names the App; installation tokens act as "<AppSlug>[bot]".
	// Default "hookwise".
	AppSlug string
	// RateLimit is the primary rate limit per token per hour; default 5000.
	// When it is spent the fake answers 403 with x-ratelimit-remaining: 0,
	// as GitHub does.
	RateLimit int
	// Strict answers 404 for issues, pull requests and workflow runs that were
	// not added first; otherwise they are created on first use.
	Strict bool
	// WriteFaultRate is the fraction of authenticated writes (POST, PATCH,
	// PUT, DELETE) answered 502 Bad Gateway instead of being performed.
	// The body is {"message":"Server Error"}, the message clients report
	// for the API's 502s (its edge sometimes sends an HTML page instead,
	// which the fake does not imitate). Each write that gets past the rate
	// limit and FailNext draws once.
	WriteFaultRate float64
	// WriteFaultAfter makes a faulted write happen anyway before the 502,
	// like a proxy timing out after GitHub acted; a client that retries it
	// writes twice. Both happen in real life. Default: not performed.
	WriteFaultAfter bool
	// Seed seeds the write-fault draws (math/rand/v2 PCG); 0 picks a fixed
	// default, so runs repeat either way.
	Seed uint64
	// HookRanges are the CIDRs GET /meta lists as "hooks", where GitHub
	// sends webhooks from. Default: GitHub's published ranges.
	HookRanges []string
	// Now is the clock ServeHTTP reads for each request: rate-limit
	// windows, token expiry, the update times of edits and WriteTimes.
	// Issues and comments created on a request are stamped with the wall
	// clock regardless. Default time.Now.
	Now func() time.Time
}

// Comment is an issue or pull request comment as stored by the fake.
type Comment struct {
	ID        int64
	Body      string
	User      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PRFile is one file of a pull request, as listed by GET /pulls/{n}/files.
type PRFile struct {
	Filename  string
	Status    string // added, removed, modified, renamed, ...
	Additions int
	Deletions int
	Patch     string
}

// WorkflowJob is one job of a workflow run.
type WorkflowJob struct {
	ID         int64 // assigned by the fake when zero
	Name       string
	Conclusion string // success, failure, cancelled, skipped, ...
	Steps      []WorkflowStep
}

// WorkflowStep is one step of a workflow job.
type WorkflowStep struct {
	Name       string
	Conclusion string
	Number     int
}

// GitHub is an in-process fake of the GitHub REST API. It speaks the real
// wire format (paths, JSON shapes, status codes, error bodies, Link
// pagination and rate-limit headers) so that go-github works against it
// unchanged. Serve it with httptest.NewServer(g). It is safe for concurrent
// use.
//
// Repositories spring into existence on first use. Issues and pull requests
// share one number space per repository, as on GitHub.
//
// One deliberate fidelity choice: GET /user with an installation token
// answers 403 "Resource not accessible by integration", like GitHub; an App
// learns its own login from GET /app (slug + "[bot]").
type GitHub struct {
	opts GitHubOptions

	mu       sync.Mutex
	tokens   map[string]ghIdentity // accepted token → who it is
	buckets  map[string]*ghBucket  // rate limit per token
	repos    map[string]*ghRepo
	comments map[int64]*ghComment // all comments by id
	nextID   int64
	userIDs  map[string]int64
	faults   []*ghFault
	requests int
	writes   int
	hooks    *ghHooks // webhook delivery logs, see hooks.go

	rng        *mrand.Rand            // write-fault draws; made on first use
	writeTimes map[string][]time.Time // credential → start times of its writes
	hookRanges []string               // GET /meta "hooks"
}

type ghIdentity struct {
	login   string
	bot     bool
	expires time.Time // zero: never
}

type ghBucket struct {
	used  int
	reset time.Time
}

type ghRepo struct {
	id     int64
	name   string // owner/name
	labels []*ghLabel
	issues map[int]*ghIssue
	runs   map[int64][]WorkflowJob
}

type ghLabel struct {
	id          int64
	name, color string
	description string
}

type ghIssue struct {
	id          int64
	number      int
	title, body string
	user        string
	state       string
	stateReason string
	labels      []string
	comments    []int64
	isPR        bool
	files       []PRFile
	createdAt   time.Time
	updatedAt   time.Time
	closedAt    time.Time
}

type ghComment struct {
	Comment
	repo   string
	number int
}

type ghFault struct {
	method, prefix string
	status         int
	left           int
}

// ghDocURL is the documentation_url GitHub puts in error bodies.
const ghDocURL = "https://docs.github.com/rest"

// ghMaxCommentBody is GitHub's limit on comment and issue bodies.
const ghMaxCommentBody = 65536

// ghMaxPRFiles is the most files GitHub lists for one pull request.
const ghMaxPRFiles = 3000

// NewGitHub returns a fake GitHub configured by opts.
func NewGitHub(opts GitHubOptions) *GitHub {
	if opts.BotLogin == "" {
		opts.BotLogin = "hookwise-bot"
	}
	if opts.AppSlug == "" {
		opts.AppSlug = "hookwise"
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5000
	}
	g := &GitHub{
		opts:     opts,
		tokens:   make(map[string]ghIdentity),
		buckets:  make(map[string]*ghBucket),
		repos:    make(map[string]*ghRepo),
		comments: make(map[int64]*ghComment),
		nextID:   1000,
		userIDs:  make(map[string]int64),
	}
	for _, t := range opts.Tokens {
		g.tokens[t] = ghIdentity{login: opts.BotLogin}
	}
	g.hookRanges = slices.Clone(opts.HookRanges)
	if g.hookRanges == nil {
		g.hookRanges = ghHookRanges
	}
	return g
}

// ghHookRanges are the ranges GitHub publishes as "hooks" in GET /meta.
var ghHookRanges = []string{"192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20", "2a0a:a440::/29", "2606:50c0::/32"}

// SetHookRanges changes the "hooks" ranges GET /meta lists from now on.
func (g *GitHub) SetHookRanges(ranges []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hookRanges = slices.Clone(ranges)
}

// Comments returns the comments on issue or pull request number of repo
// ("owner/name"), oldest first.
func (g *GitHub) Comments(repo string, number int) []Comment {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.repos[repo]
	if r == nil || r.issues[number] == nil {
		return nil
	}
	var out []Comment
	for _, id := range r.issues[number].comments {
		out = append(out, g.comments[id].Comment)
	}
	return out
}

// Labels returns the names of the labels on issue or pull request number.
func (g *GitHub) Labels(repo string, number int) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.repos[repo]
	if r == nil || r.issues[number] == nil {
		return nil
	}
	return append([]string(nil), r.issues[number].labels...)
}

// State returns "open" or "closed" for an issue or pull request, or "" if
// it does not exist.
func (g *GitHub) State(repo string, number int) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.repos[repo]
	if r == nil || r.issues[number] == nil {
		return ""
	}
	return r.issues[number].state
}

// SetRepoLabels replaces the labels defined in repo.
func (g *GitHub) SetRepoLabels(repo string, labels []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.repo(repo)
	r.labels = nil
	for _, name := range labels {
		g.addRepoLabel(r, name)
	}
}

// AddIssue creates (or retitles) issue number in repo, opened by someone
// other than the bot. Needed before use in Strict mode.
func (g *GitHub) AddIssue(repo string, number int, title string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	is := g.createIssue(g.repo(repo), number)
	is.title = title
}

// AddPullRequest makes number in repo a pull request with files, creating
// it if needed.
func (g *GitHub) AddPullRequest(repo string, number int, files []PRFile) {
	g.mu.Lock()
	defer g.mu.Unlock()
	is := g.createIssue(g.repo(repo), number)
	is.isPR = true
	is.files = append([]PRFile(nil), files...)
}

// AddComment adds a comment by user to issue or pull request number,
// creating the issue if needed, and returns the comment id. It seeds
// threads with comments written by people.
func (g *GitHub) AddComment(repo string, number int, user, body string) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	is := g.createIssue(g.repo(repo), number)
	return g.addComment(repo, is, user, body).ID
}

// AddWorkflowJobs sets the jobs of workflow run runID in repo. Jobs with a
// zero ID get one.
func (g *GitHub) AddWorkflowJobs(repo string, runID int64, jobs []WorkflowJob) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.repo(repo)
	js := make([]WorkflowJob, len(jobs))
	for i, j := range jobs {
		if j.ID == 0 {
			j.ID = g.id()
		}
		j.Steps = append([]WorkflowStep(nil), j.Steps...)
		js[i] = j
	}
	r.runs[runID] = js
}

// FailNext makes the next n requests whose method is method ("" for any)
// and whose path starts with pathPrefix fail with status and GitHub's error
// body for it. Authentication is still checked first. A 403 is a primary
// rate limit (x-ratelimit-remaining: 0, x-ratelimit-reset two seconds ahead); a 429 is a
// secondary rate limit (retry-after: 1).
func (g *GitHub) FailNext(method, pathPrefix string, status int, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults = append(g.faults, &ghFault{method: method, prefix: pathPrefix, status: status, left: n})
}

// Stats returns how many requests the fake received, and how many of them
// were writes (POST, PATCH, PUT, DELETE).
func (g *GitHub) Stats() (requests, writes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests, g.writes
}

// ghDefaultSeed seeds the write-fault draws when GitHubOptions.Seed is 0.
const ghDefaultSeed = 0x5EED_617B_0000_0001

// WriteTimes returns, per credential, the start times of all its
// authenticated writes (POST, PATCH, PUT, DELETE), oldest first, for
// checking that a client paces itself. It counts every write that passed
// authentication, whatever the answer: performed, faulted, or refused for
// the rate limit. Tokens are keyed by the token string; App JWTs, which
// change with every request, by "app". A start time is when the request
// arrived, before Latency.
func (g *GitHub) WriteTimes() map[string][]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string][]time.Time, len(g.writeTimes))
	for cred, ts := range g.writeTimes {
		ts = slices.Clone(ts)
		slices.SortFunc(ts, time.Time.Compare)
		out[cred] = ts
	}
	return out
}

// MaxWritesInWindow returns, over all credentials, the largest number of
// writes one credential made within any window of length d: the most
// start times t with s <= t < s+d for some s. It is 0 when d <= 0.
func (g *GitHub) MaxWritesInWindow(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	most := 0
	for _, ts := range g.WriteTimes() {
		first := 0
		for last := range ts {
			for ts[last].Sub(ts[first]) >= d {
				first++
			}
			most = max(most, last-first+1)
		}
	}
	return most
}

// now reads the configured clock.
func (g *GitHub) now() time.Time {
	if g.opts.Now != nil {
		return g.opts.Now()
	}
	return time.Now()
}

// ghRequest carries what one request needs once authenticated.
type ghRequest struct {
	w     http.ResponseWriter
	r     *http.Request
	who   ghIdentity
	base  string // API base URL as the client sees it, no trailing slash
	token string
}

// ServeHTTP implements http.Handler.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	if g.opts.Latency > 0 {
		t := time.NewTimer(g.opts.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	now := g.now()
	path := strings.Trim(r.URL.Path, "/")
	segs := strings.Split(path, "/")
	isApp := len(segs) > 0 && segs[0] == "app"

	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	isWrite := false
	switch r.Method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		g.writes++
		isWrite = true
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%X:%X", now.Unix()&0xFFFF, g.requests))

	token, scheme := ghBearer(r.Header.Get("Authorization"))
	req := &ghRequest{w: w, r: r, token: token, base: ghBaseURL(r)}

	// Authenticate, then account for the rate limit of whoever it is.
	var authErr string
	switch {
	case isApp:
		if scheme != "bearer" {
			authErr = "A JSON web token could not be decoded"
		} else if msg := g.checkJWT(token, now); msg != "" {
			authErr = msg
		}
		req.who = ghIdentity{login: g.opts.AppSlug + "[bot]", bot: true}
		token = "app"
	default:
		who, ok := g.tokens[token]
		if !ok || token == "" || (!who.expires.IsZero() && now.After(who.expires)) {
			authErr = "Bad credentials"
		}
		req.who = who
	}
	limit := g.opts.RateLimit
	if authErr != "" {
		token, limit = "", 60 // unauthenticated requests share a small bucket
		if r.Header.Get("Authorization") == "" && r.Method == http.MethodGet && path == "meta" {
			authErr = "" // served without credentials; bad ones are refused, as on GitHub
		}
	} else if isWrite {
		if g.writeTimes == nil {
			g.writeTimes = make(map[string][]time.Time)
		}
		g.writeTimes[token] = append(g.writeTimes[token], start)
	}
	b := g.buckets[token]
	if b == nil || !now.Before(b.reset) {
		b = &ghBucket{reset: now.Add(time.Hour).Truncate(time.Second)}
		g.buckets[token] = b
	}
	exhausted := b.used >= limit
	if !exhausted {
		b.used++
	}
	g.setRate(h, limit, b)
	if authErr != "" {
		ghError(w, http.StatusUnauthorized, authErr)
		return
	}
	if exhausted {
		ghErrorDoc(w, http.StatusForbidden, "API rate limit exceeded for user ID "+strconv.FormatInt(g.userID(req.who.login), 10)+".",
			"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
		return
	}
	if g.fault(req, now) {
		return
	}
	if isWrite && g.writeFault() {
		if g.opts.WriteFaultAfter {
			orig := req.w
			req.w = ghDiscard{header: make(http.Header)}
			g.route(req, segs, now)
			req.w = orig
		}
		ghWriteJSON(w, http.StatusBadGateway, struct {
			Message string `json:"message"`
		}{"Server Error"})
		return
	}
	g.route(req, segs, now)
}

func (g *GitHub) setRate(h http.Header, limit int, b *ghBucket) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-b.used))
	h.Set("X-RateLimit-Used", strconv.Itoa(b.used))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(b.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// fault answers the request with an injected error if one matches.
func (g *GitHub) fault(req *ghRequest, now time.Time) bool {
	for i, f := range g.faults {
		if (f.method != "" && f.method != req.r.Method) || !strings.HasPrefix(req.r.URL.Path, f.prefix) {
			continue
		}
		f.left--
		if f.left <= 0 {
			g.faults = append(g.faults[:i], g.faults[i+1:]...)
		}
		h := req.w.Header()
		switch f.status {
		case http.StatusForbidden:
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(2*time.Second).Unix(), 10))
			ghErrorDoc(req.w, f.status, "API rate limit exceeded for user ID "+strconv.FormatInt(g.userID(req.who.login), 10)+".",
				"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
		case http.StatusTooManyRequests:
			h.Set("Retry-After", "1")
			ghErrorDoc(req.w, f.status, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
				"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
		default:
			ghError(req.w, f.status, ghStatusMessage(f.status))
		}
		return true
	}
	return false
}

// writeFault draws whether a write gets a random 502.
func (g *GitHub) writeFault() bool {
	if g.opts.WriteFaultRate <= 0 {
		return false
	}
	if g.rng == nil {
		seed := g.opts.Seed
		if seed == 0 {
			seed = ghDefaultSeed
		}
		g.rng = mrand.New(mrand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	}
	return g.rng.Float64() < g.opts.WriteFaultRate
}

// ghDiscard is a ResponseWriter that drops the answer of a write performed
// behind a faulted response.
type ghDiscard struct{ header http.Header }

func (d ghDiscard) Header() http.Header       { return d.header }
func (ghDiscard) Write(b []byte) (int, error) { return len(b), nil }
func (ghDiscard) WriteHeader(int)             {}

// route dispatches an authenticated request. Unknown paths and methods get
// GitHub's 404.
func (g *GitHub) route(req *ghRequest, s []string, now time.Time) {
	m := req.r.Method
	switch {
	case len(s) == 1 && s[0] == "user" && m == http.MethodGet:
		g.getUser(req)
		return
	case len(s) == 1 && s[0] == "app" && m == http.MethodGet:
		g.getApp(req)
		return
	case len(s) == 1 && s[0] == "meta" && m == http.MethodGet:
		g.getMeta(req)
		return
	case len(s) == 4 && s[0] == "app" && s[1] == "installations" && s[3] == "access_tokens" && m == http.MethodPost:
		g.createInstallationToken(req, s[2], now)
		return
	case ghIsHookPath(s): // webhook deliveries, see hooks.go
		g.routeHook(req, s, now)
		return
	case len(s) < 4 || s[0] != "repos":
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	repo := g.repo(s[1] + "/" + s[2])
	rest := s[3:]
	switch {
	case len(rest) == 1 && rest[0] == "labels" && m == http.MethodGet:
		g.listRepoLabels(req, repo)
	case len(rest) == 3 && rest[0] == "issues" && rest[1] == "comments":
		id, err := strconv.ParseInt(rest[2], 10, 64)
		c := g.comments[id]
		if err != nil || c == nil || c.repo != repo.name {
			ghError(req.w, http.StatusNotFound, "Not Found")
			return
		}
		switch m {
		case http.MethodGet:
			ghWriteJSON(req.w, http.StatusOK, g.commentJSON(req, c))
		case http.MethodPatch:
			g.editComment(req, c, now)
		default:
			ghError(req.w, http.StatusNotFound, "Not Found")
		}
	case len(rest) >= 2 && (rest[0] == "issues" || rest[0] == "pulls"):
		g.routeIssue(req, repo, rest, now)
	case len(rest) == 4 && rest[0] == "actions" && rest[1] == "runs" && rest[3] == "jobs" && m == http.MethodGet:
		g.listJobs(req, repo, rest[2], now)
	default:
		ghError(req.w, http.StatusNotFound, "Not Found")
	}
}

// routeIssue serves /repos/{o}/{r}/issues/{n}[/...] and /pulls/{n}[/...].
func (g *GitHub) routeIssue(req *ghRequest, repo *ghRepo, rest []string, now time.Time) {
	m := req.r.Method
	number, err := strconv.Atoi(rest[1])
	if err != nil || number <= 0 {
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	is := repo.issues[number]
	if is == nil && !g.opts.Strict {
		is = g.createIssue(repo, number)
		is.isPR = rest[0] == "pulls"
	}
	if is == nil || (rest[0] == "pulls" && !is.isPR) {
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	key := rest[0] + "/" + strings.Join(rest[2:], "/")
	switch {
	case key == "issues/" && m == http.MethodGet:
		ghWriteJSON(req.w, http.StatusOK, g.issueJSON(req, repo, is))
	case key == "issues/" && m == http.MethodPatch:
		g.editIssue(req, repo, is, now)
	case key == "issues/comments" && m == http.MethodGet:
		list := make([]any, 0, len(is.comments))
		start, end := ghPaginate(req, len(is.comments))
		for _, id := range is.comments[start:end] {
			list = append(list, g.commentJSON(req, g.comments[id]))
		}
		ghWriteJSON(req.w, http.StatusOK, list)
	case key == "issues/comments" && m == http.MethodPost:
		g.createComment(req, repo, is)
	case key == "issues/labels" && m == http.MethodGet:
		ghWriteJSON(req.w, http.StatusOK, g.issueLabelsJSON(req, repo, is))
	case key == "issues/labels" && m == http.MethodPost:
		g.addLabels(req, repo, is, now)
	case key == "pulls/" && m == http.MethodGet:
		ghWriteJSON(req.w, http.StatusOK, g.pullJSON(req, repo, is))
	case key == "pulls/files" && m == http.MethodGet:
		files := is.files
		if len(files) > ghMaxPRFiles {
			files = files[:ghMaxPRFiles]
		}
		start, end := ghPaginate(req, len(files))
		list := make([]ghFileJSON, 0, end-start)
		for _, f := range files[start:end] {
			list = append(list, ghFileJSON{
				SHA:       ghSHA(repo.name, f.Filename, f.Patch),
				Filename:  f.Filename,
				Status:    f.Status,
				Additions: f.Additions,
				Deletions: f.Deletions,
				Changes:   f.Additions + f.Deletions,
				Patch:     f.Patch,
				BlobURL:   "https://github.com/" + repo.name + "/blob/" + ghSHA(repo.name, strconv.Itoa(is.number)) + "/" + f.Filename,
			})
		}
		ghWriteJSON(req.w, http.StatusOK, list)
	default:
		ghError(req.w, http.StatusNotFound, "Not Found")
	}
}

// --- handlers ---

func (g *GitHub) getUser(req *ghRequest) {
	if req.who.bot {
		ghError(req.w, http.StatusForbidden, "Resource not accessible by integration")
		return
	}
	ghWriteJSON(req.w, http.StatusOK, g.userJSON(req.who.login, false))
}

// getMeta serves GET /meta in GitHub's shape: the address ranges of its
// services ("hooks" is where webhooks come from) and its SSH host keys.
func (g *GitHub) getMeta(req *ghRequest) {
	ghWriteJSON(req.w, http.StatusOK, map[string]any{
		"verifiable_password_authentication": false,
		"ssh_key_fingerprints": map[string]string{
			"SHA256_ECDSA":   "p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
			"SHA256_ED25519": "+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
			"SHA256_RSA":     "uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
		},
		"ssh_keys":   []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
		"hooks":      g.hookRanges,
		"web":        []string{"192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20", "2a0a:a440::/29", "2606:50c0::/32"},
		"api":        []string{"192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20", "2a0a:a440::/29", "2606:50c0::/32"},
		"git":        []string{"192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20", "2a0a:a440::/29", "2606:50c0::/32"},
		"packages":   []string{"140.82.121.33/32", "140.82.121.34/32"},
		"pages":      []string{"192.30.252.153/32", "192.30.252.154/32", "185.199.108.153/32", "185.199.109.153/32"},
		"importer":   []string{"52.23.85.212/32", "52.0.228.224/32"},
		"actions":    []string{"4.148.0.0/16", "4.149.0.0/18"},
		"dependabot": []string{"18.213.123.130/32", "3.217.79.163/32"},
		"domains": map[string][]string{
			"website":  {"*.github.com", "*.github.dev", "*.github.io", "*.githubassets.com", "*.githubusercontent.com"},
			"packages": {"ghcr.io", "*.pkg.github.com"},
			"actions":  {"*.actions.githubusercontent.com", "github.com"},
		},
	})
}

func (g *GitHub) getApp(req *ghRequest) {
	ghWriteJSON(req.w, http.StatusOK, map[string]any{
		"id":         g.opts.AppID,
		"slug":       g.opts.AppSlug,
		"node_id":    "A_" + strconv.FormatInt(g.opts.AppID, 10),
		"name":       g.opts.AppSlug,
		"html_url":   "https://github.com/apps/" + g.opts.AppSlug,
		"created_at": "2024-01-01T00:00:00Z",
		"updated_at": "2024-01-01T00:00:00Z",
		"permissions": map[string]string{
			"issues": "write", "pull_requests": "write", "actions": "read", "metadata": "read",
		},
		"events": []string{"issues", "issue_comment", "pull_request", "workflow_run"},
	})
}

func (g *GitHub) createInstallationToken(req *ghRequest, idText string, now time.Time) {
	if _, err := strconv.ParseInt(idText, 10, 64); err != nil {
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	var buf [18]byte
	_, _ = rand.Read(buf[:])
	tok := "ghs_" + hex.EncodeToString(buf[:])
	expires := now.Add(time.Hour).UTC().Truncate(time.Second)
	g.tokens[tok] = ghIdentity{login: g.opts.AppSlug + "[bot]", bot: true, expires: expires}
	ghWriteJSON(req.w, http.StatusCreated, map[string]any{
		"token":                tok,
		"expires_at":           expires.Format(time.RFC3339),
		"permissions":          map[string]string{"issues": "write", "pull_requests": "write", "actions": "read", "metadata": "read"},
		"repository_selection": "all",
	})
}

// checkJWT validates an App JWT the way GitHub does and returns GitHub's
// message when it is refused, "" when accepted.
func (g *GitHub) checkJWT(tok string, now time.Time) string {
	if g.opts.AppPublicKey == nil {
		return ""
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) {
		return g.opts.AppPublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"
		}
		return "A JSON web token could not be decoded"
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Sub(now) > 10*time.Minute+30*time.Second {
		return "'Expiration time' claim ('exp') is too far in the future"
	}
	var iss string
	switch v := claims["iss"].(type) {
	case string:
		iss = v
	case float64:
		iss = strconv.FormatInt(int64(v), 10)
	}
	if iss != strconv.FormatInt(g.opts.AppID, 10) {
		return "Integration not found"
	}
	return ""
}

func (g *GitHub) listRepoLabels(req *ghRequest, repo *ghRepo) {
	start, end := ghPaginate(req, len(repo.labels))
	list := make([]ghLabelJSON, 0, end-start)
	for _, l := range repo.labels[start:end] {
		list = append(list, g.labelJSON(req, repo, l))
	}
	ghWriteJSON(req.w, http.StatusOK, list)
}

func (g *GitHub) createComment(req *ghRequest, repo *ghRepo, is *ghIssue) {
	var in struct {
		Body *string `json:"body"`
	}
	if !ghDecode(req, &in) {
		return
	}
	if in.Body == nil || *in.Body == "" {
		ghValidation(req.w, "IssueComment", "body", "missing_field", "")
		return
	}
	if len([]rune(*in.Body)) > ghMaxCommentBody {
		ghValidation(req.w, "IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)")
		return
	}
	c := g.addComment(repo.name, is, req.who.login, *in.Body)
	req.w.Header().Set("Location", g.commentURL(req, c))
	ghWriteJSON(req.w, http.StatusCreated, g.commentJSON(req, c))
}

func (g *GitHub) editComment(req *ghRequest, c *ghComment, now time.Time) {
	var in struct {
		Body *string `json:"body"`
	}
	if !ghDecode(req, &in) {
		return
	}
	if in.Body == nil || *in.Body == "" {
		ghValidation(req.w, "IssueComment", "body", "missing_field", "")
		return
	}
	if len([]rune(*in.Body)) > ghMaxCommentBody {
		ghValidation(req.w, "IssueComment", "body", "custom", "body is too long (maximum is 65536 characters)")
		return
	}
	c.Body = *in.Body
	c.UpdatedAt = now.UTC().Truncate(time.Second)
	ghWriteJSON(req.w, http.StatusOK, g.commentJSON(req, c))
}

func (g *GitHub) editIssue(req *ghRequest, repo *ghRepo, is *ghIssue, now time.Time) {
	var in struct {
		Title       *string   `json:"title"`
		Body        *string   `json:"body"`
		State       *string   `json:"state"`
		StateReason *string   `json:"state_reason"`
		Labels      *[]string `json:"labels"`
	}
	if !ghDecode(req, &in) {
		return
	}
	if in.State != nil && *in.State != "open" && *in.State != "closed" {
		ghValidation(req.w, "Issue", "state", "invalid", "")
		return
	}
	if in.StateReason != nil {
		switch *in.StateReason {
		case "completed", "not_planned", "reopened", "duplicate":
		default:
			ghValidation(req.w, "Issue", "state_reason", "invalid", "")
			return
		}
	}
	now = now.UTC().Truncate(time.Second)
	if in.Title != nil {
		is.title = *in.Title
	}
	if in.Body != nil {
		is.body = *in.Body
	}
	if in.State != nil && *in.State != is.state {
		is.state = *in.State
		if is.state == "closed" {
			is.closedAt = now
			is.stateReason = "completed"
		} else {
			is.closedAt = time.Time{}
			is.stateReason = "reopened"
		}
	}
	if in.StateReason != nil {
		is.stateReason = *in.StateReason
	}
	if in.Labels != nil {
		is.labels = nil
		g.applyLabels(repo, is, *in.Labels)
	}
	is.updatedAt = now
	ghWriteJSON(req.w, http.StatusOK, g.issueJSON(req, repo, is))
}

func (g *GitHub) addLabels(req *ghRequest, repo *ghRepo, is *ghIssue, now time.Time) {
	// GitHub takes {"labels":[...]} and, for compatibility, a bare array.
	var in struct {
		Labels []string `json:"labels"`
	}
	body := json.NewDecoder(req.r.Body)
	var raw json.RawMessage
	if err := body.Decode(&raw); err != nil {
		ghError(req.w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &in.Labels); err != nil {
			ghError(req.w, http.StatusBadRequest, "Problems parsing JSON")
			return
		}
	} else if err := json.Unmarshal(raw, &in); err != nil {
		ghError(req.w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	for _, l := range in.Labels {
		if strings.TrimSpace(l) == "" {
			ghValidation(req.w, "Label", "name", "missing_field", "")
			return
		}
	}
	g.applyLabels(repo, is, in.Labels)
	is.updatedAt = now.UTC().Truncate(time.Second)
	ghWriteJSON(req.w, http.StatusOK, g.issueLabelsJSON(req, repo, is))
}

func (g *GitHub) listJobs(req *ghRequest, repo *ghRepo, idText string, now time.Time) {
	runID, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	jobs, ok := repo.runs[runID]
	if !ok && g.opts.Strict {
		ghError(req.w, http.StatusNotFound, "Not Found")
		return
	}
	start, end := ghPaginate(req, len(jobs))
	ts := now.UTC().Truncate(time.Second).Format(time.RFC3339)
	sha := ghSHA(repo.name, idText)
	list := make([]ghJobJSON, 0, end-start)
	for _, j := range jobs[start:end] {
		steps := make([]ghStepJSON, 0, len(j.Steps))
		for i, s := range j.Steps {
			n := s.Number
			if n == 0 {
				n = i + 1
			}
			steps = append(steps, ghStepJSON{Name: s.Name, Status: "completed", Conclusion: s.Conclusion, Number: n, StartedAt: ts, CompletedAt: ts})
		}
		id := strconv.FormatInt(j.ID, 10)
		list = append(list, ghJobJSON{
			ID:           j.ID,
			RunID:        runID,
			RunURL:       req.base + "/repos/" + repo.name + "/actions/runs/" + idText,
			NodeID:       "CR_" + id,
			HeadSHA:      sha,
			HeadBranch:   "main",
			URL:          req.base + "/repos/" + repo.name + "/actions/jobs/" + id,
			HTMLURL:      "https://github.com/" + repo.name + "/actions/runs/" + idText + "/job/" + id,
			Status:       "completed",
			Conclusion:   j.Conclusion,
			CreatedAt:    ts,
			StartedAt:    ts,
			CompletedAt:  ts,
			Name:         j.Name,
			Steps:        steps,
			CheckRunURL:  req.base + "/repos/" + repo.name + "/check-runs/" + id,
			Labels:       []string{"ubuntu-latest"},
			RunAttempt:   1,
			WorkflowName: "CI",
		})
	}
	ghWriteJSON(req.w, http.StatusOK, struct {
		TotalCount int         `json:"total_count"`
		Jobs       []ghJobJSON `json:"jobs"`
	}{len(jobs), list})
}

// --- state helpers (caller holds g.mu) ---

func (g *GitHub) id() int64 {
	g.nextID++
	return g.nextID
}

func (g *GitHub) userID(login string) int64 {
	id, ok := g.userIDs[login]
	if !ok {
		id = g.id()
		g.userIDs[login] = id
	}
	return id
}

func (g *GitHub) repo(name string) *ghRepo {
	r := g.repos[name]
	if r == nil {
		r = &ghRepo{id: g.id(), name: name, issues: make(map[int]*ghIssue), runs: make(map[int64][]WorkflowJob)}
		g.repos[name] = r
	}
	return r
}

func (g *GitHub) createIssue(r *ghRepo, number int) *ghIssue {
	is := r.issues[number]
	if is == nil {
		now := time.Now().UTC().Truncate(time.Second)
		is = &ghIssue{
			id: g.id(), number: number, title: fmt.Sprintf("Issue %d", number),
			user: "octocat", state: "open", createdAt: now, updatedAt: now,
		}
		r.issues[number] = is
	}
	return is
}

func (g *GitHub) addComment(repo string, is *ghIssue, user, body string) *ghComment {
	now := time.Now().UTC().Truncate(time.Second)
	c := &ghComment{
		Comment: Comment{ID: g.id(), Body: body, User: user, CreatedAt: now, UpdatedAt: now},
		repo:    repo, number: is.number,
	}
	g.comments[c.ID] = c
	is.comments = append(is.comments, c.ID)
	is.updatedAt = now
	return c
}

func (g *GitHub) addRepoLabel(r *ghRepo, name string) *ghLabel {
	for _, l := range r.labels {
		if strings.EqualFold(l.name, name) {
			return l
		}
	}
	l := &ghLabel{id: g.id(), name: name, color: "ededed"}
	r.labels = append(r.labels, l)
	return l
}

// applyLabels adds labels to an issue, creating unknown ones in the
// repository as GitHub does. Names match case-insensitively.
func (g *GitHub) applyLabels(r *ghRepo, is *ghIssue, names []string) {
next:
	for _, name := range names {
		l := g.addRepoLabel(r, name)
		for _, have := range is.labels {
			if strings.EqualFold(have, l.name) {
				continue next
			}
		}
		is.labels = append(is.labels, l.name)
	}
}

// --- JSON shapes (field names as GitHub sends them) ---

type ghUserJSON struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	AvatarURL string `json:"avatar_url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

type ghLabelJSON struct {
	ID          int64   `json:"id"`
	NodeID      string  `json:"node_id"`
	URL         string  `json:"url"`
	Name        string  `json:"name"`
	Color       string  `json:"color"`
	Default     bool    `json:"default"`
	Description *string `json:"description"`
}

type ghCommentJSON struct {
	ID                int64      `json:"id"`
	NodeID            string     `json:"node_id"`
	URL               string     `json:"url"`
	HTMLURL           string     `json:"html_url"`
	IssueURL          string     `json:"issue_url"`
	Body              string     `json:"body"`
	User              ghUserJSON `json:"user"`
	CreatedAt         string     `json:"created_at"`
	UpdatedAt         string     `json:"updated_at"`
	AuthorAssociation string     `json:"author_association"`
}

type ghFileJSON struct {
	SHA       string `json:"sha"`
	Filename  string `json:"filename"`
	Status    string `json:"status"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Changes   int    `json:"changes"`
	BlobURL   string `json:"blob_url"`
	Patch     string `json:"patch,omitempty"`
}

type ghStepJSON struct {
	Name        string `json:"name"`
	Status      string `json:"status"`
	Conclusion  string `json:"conclusion"`
	Number      int    `json:"number"`
	StartedAt   string `json:"started_at"`
	CompletedAt string `json:"completed_at"`
}

type ghJobJSON struct {
	ID           int64        `json:"id"`
	RunID        int64        `json:"run_id"`
	RunURL       string       `json:"run_url"`
	NodeID       string       `json:"node_id"`
	HeadSHA      string       `json:"head_sha"`
	HeadBranch   string       `json:"head_branch"`
	URL          string       `json:"url"`
	HTMLURL      string       `json:"html_url"`
	Status       string       `json:"status"`
	Conclusion   string       `json:"conclusion"`
	CreatedAt    string       `json:"created_at"`
	StartedAt    string       `json:"started_at"`
	CompletedAt  string       `json:"completed_at"`
	Name         string       `json:"name"`
	Steps        []ghStepJSON `json:"steps"`
	CheckRunURL  string       `json:"check_run_url"`
	Labels       []string     `json:"labels"`
	RunAttempt   int          `json:"run_attempt"`
	WorkflowName string       `json:"workflow_name"`
}

func (g *GitHub) userJSON(login string, bot bool) ghUserJSON {
	typ := "User"
	if bot || strings.HasSuffix(login, "[bot]") {
		typ = "Bot"
	}
	id := g.userID(login)
	return ghUserJSON{
		Login: login, ID: id, NodeID: "U_" + strconv.FormatInt(id, 10),
		AvatarURL: "https://avatars.githubusercontent.com/u/" + strconv.FormatInt(id, 10),
		HTMLURL:   "https://github.com/" + login, Type: typ,
	}
}

func (g *GitHub) labelJSON(req *ghRequest, r *ghRepo, l *ghLabel) ghLabelJSON {
	var desc *string
	if l.description != "" {
		desc = &l.description
	}
	return ghLabelJSON{
		ID: l.id, NodeID: "LA_" + strconv.FormatInt(l.id, 10),
		URL:  req.base + "/repos/" + r.name + "/labels/" + url.PathEscape(l.name),
		Name: l.name, Color: l.color, Description: desc,
	}
}

func (g *GitHub) issueLabelsJSON(req *ghRequest, r *ghRepo, is *ghIssue) []ghLabelJSON {
	out := make([]ghLabelJSON, 0, len(is.labels))
	for _, name := range is.labels {
		out = append(out, g.labelJSON(req, r, g.addRepoLabel(r, name)))
	}
	return out
}

func (g *GitHub) commentURL(req *ghRequest, c *ghComment) string {
	return req.base + "/repos/" + c.repo + "/issues/comments/" + strconv.FormatInt(c.ID, 10)
}

func (g *GitHub) commentJSON(req *ghRequest, c *ghComment) ghCommentJSON {
	assoc := "NONE"
	if c.User == "octocat" {
		assoc = "OWNER"
	}
	return ghCommentJSON{
		ID: c.ID, NodeID: "IC_" + strconv.FormatInt(c.ID, 10),
		URL:       g.commentURL(req, c),
		HTMLURL:   fmt.Sprintf("https://github.com/%s/issues/%d#issuecomment-%d", c.repo, c.number, c.ID),
		IssueURL:  fmt.Sprintf("%s/repos/%s/issues/%d", req.base, c.repo, c.number),
		Body:      c.Body,
		User:      g.userJSON(c.User, false),
		CreatedAt: c.CreatedAt.Format(time.RFC3339),
		UpdatedAt: c.UpdatedAt.Format(time.RFC3339),

		AuthorAssociation: assoc,
	}
}

func (g *GitHub) issueJSON(req *ghRequest, r *ghRepo, is *ghIssue) map[string]any {
	kind := "issues"
	if is.isPR {
		kind = "pull"
	}
	m := map[string]any{
		"id":                 is.id,
		"node_id":            "I_" + strconv.FormatInt(is.id, 10),
		"url":                fmt.Sprintf("%s/repos/%s/issues/%d", req.base, r.name, is.number),
		"repository_url":     req.base + "/repos/" + r.name,
		"comments_url":       fmt.Sprintf("%s/repos/%s/issues/%d/comments", req.base, r.name, is.number),
		"html_url":           fmt.Sprintf("https://github.com/%s/%s/%d", r.name, kind, is.number),
		"number":             is.number,
		"title":              is.title,
		"body":               is.body,
		"user":               g.userJSON(is.user, false),
		"labels":             g.issueLabelsJSON(req, r, is),
		"state":              is.state,
		"state_reason":       nil,
		"locked":             false,
		"comments":           len(is.comments),
		"created_at":         is.createdAt.Format(time.RFC3339),
		"updated_at":         is.updatedAt.Format(time.RFC3339),
		"closed_at":          nil,
		"author_association": "OWNER",
	}
	if is.stateReason != "" {
		m["state_reason"] = is.stateReason
	}
	if !is.closedAt.IsZero() {
		m["closed_at"] = is.closedAt.Format(time.RFC3339)
	}
	if is.isPR {
		m["pull_request"] = map[string]any{
			"url":      fmt.Sprintf("%s/repos/%s/pulls/%d", req.base, r.name, is.number),
			"html_url": fmt.Sprintf("https://github.com/%s/pull/%d", r.name, is.number),
		}
	}
	return m
}

func (g *GitHub) pullJSON(req *ghRequest, r *ghRepo, is *ghIssue) map[string]any {
	adds, dels := 0, 0
	for _, f := range is.files {
		adds += f.Additions
		dels += f.Deletions
	}
	m := g.issueJSON(req, r, is)
	delete(m, "pull_request")
	delete(m, "labels")
	m["node_id"] = "PR_" + strconv.FormatInt(is.id, 10)
	m["url"] = fmt.Sprintf("%s/repos/%s/pulls/%d", req.base, r.name, is.number)
	m["html_url"] = fmt.Sprintf("https://github.com/%s/pull/%d", r.name, is.number)
	m["labels"] = g.issueLabelsJSON(req, r, is)
	m["draft"] = false
	m["merged"] = false
	m["changed_files"] = len(is.files)
	m["additions"] = adds
	m["deletions"] = dels
	m["head"] = map[string]any{"label": "octocat:feature", "ref": "feature", "sha": ghSHA(r.name, strconv.Itoa(is.number))}
	m["base"] = map[string]any{"label": "octocat:main", "ref": "main", "sha": ghSHA(r.name, "main")}
	return m
}

// --- wire helpers ---

// ghBearer splits an Authorization header into its token and scheme
// ("bearer" or "token"; "" when absent or another scheme).
func ghBearer(h string) (token, scheme string) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok {
		return "", ""
	}
	scheme = strings.ToLower(scheme)
	if scheme != "bearer" && scheme != "token" {
		return "", ""
	}
	return strings.TrimSpace(token), scheme
}

// ghBaseURL is the API root as the client addressed it, for the URLs the
// fake puts in bodies and Link headers.
func ghBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ghPaginate reads page and per_page (default 30, at most 100), sets the
// Link header for total items and returns the slice bounds of this page.
func ghPaginate(req *ghRequest, total int) (start, end int) {
	q := req.r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max((total+per-1)/per, 1)
	link := func(p int, rel string) string {
		u := *req.r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(per))
		u.RawQuery = v.Encode()
		return "<" + req.base + u.RequestURI() + `>; rel="` + rel + `"`
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		req.w.Header().Set("Link", strings.Join(links, ", "))
	}
	start = min((page-1)*per, total)
	end = min(start+per, total)
	return start, end
}

// ghDecode reads a JSON request body into v, answering 400 as GitHub does
// when it is not JSON.
func ghDecode(req *ghRequest, v any) bool {
	if err := json.NewDecoder(req.r.Body).Decode(v); err != nil {
		ghError(req.w, http.StatusBadRequest, "Problems parsing JSON")
		return false
	}
	return true
}

func ghWriteJSON(w http.ResponseWriter, status int, v any) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ghError writes GitHub's error body: {"message":...,"documentation_url":...}.
func ghError(w http.ResponseWriter, status int, message string) {
	ghErrorDoc(w, status, message, ghDocURL)
}

func ghErrorDoc(w http.ResponseWriter, status int, message, doc string) {
	body := struct {
		Message string `json:"message"`
		DocURL  string `json:"documentation_url"`
		Status  string `json:"status"`
	}{message, doc, strconv.Itoa(status)}
	ghWriteJSON(w, status, body)
}

// ghValidation writes a 422 "Validation Failed" with one error entry.
func ghValidation(w http.ResponseWriter, resource, field, code, message string) {
	type item struct {
		Resource string `json:"resource"`
		Field    string `json:"field"`
		Code     string `json:"code"`
		Message  string `json:"message,omitempty"`
	}
	ghWriteJSON(w, http.StatusUnprocessableEntity, struct {
		Message string `json:"message"`
		Errors  []item `json:"errors"`
		DocURL  string `json:"documentation_url"`
		Status  string `json:"status"`
	}{"Validation Failed", []item{{resource, field, code, message}}, ghDocURL, "422"})
}

// ghStatusMessage is the message GitHub sends with an injected status.
func ghStatusMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Bad credentials"
	case http.StatusUnprocessableEntity:
		return "Validation Failed"
	case http.StatusBadRequest:
		return "Problems parsing JSON"
	case http.StatusInternalServerError, http.StatusBadGateway:
		return "Server Error"
	case http.StatusServiceUnavailable:
		return "Service Unavailable"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// ghSHA makes a stable, plausible 40-hex commit SHA from parts.
func ghSHA(parts ...string) string {
	sum := sha1.Sum([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])
}
