package fake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-github/v84/github"

	"github.com/hookwise/hookwise/internal/fake"
)

const ghTestToken = "ghp_testtoken"

// ghStart serves g and returns a go-github client authenticated with tok.
func ghStart(t *testing.T, g *fake.GitHub, tok string) (*github.Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	c := github.NewClient(srv.Client())
	if tok != "" {
		c = c.WithAuthToken(tok)
	}
	base, err := c.BaseURL.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = base
	return c, srv
}

func ghStatus(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

func TestGitHubAuth(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	ctx := context.Background()

	c, srv := ghStart(t, g, ghTestToken)
	u, resp, err := c.Users.Get(ctx, "")
	if err != nil {
		t.Fatalf("Users.Get: %v", err)
	}
	if u.GetLogin() != "hookwise-bot" || u.GetType() != "User" {
		t.Errorf("Users.Get = %q/%q, want hookwise-bot/User", u.GetLogin(), u.GetType())
	}
	if resp.Rate.Limit != 5000 || resp.Rate.Remaining != 4999 || resp.Rate.Reset.IsZero() {
		t.Errorf("rate = %+v, want limit 5000, remaining 4999, reset set", resp.Rate)
	}
	if got := resp.Header.Get("X-RateLimit-Resource"); got != "core" {
		t.Errorf("x-ratelimit-resource = %q, want core", got)
	}

	bad, _ := ghStart(t, g, "ghp_wrong")
	_, _, err = bad.Users.Get(ctx, "")
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != 401 || er.Message != "Bad credentials" || er.DocumentationURL == "" {
		t.Errorf("Users.Get(bad token) = %v, want 401 Bad credentials", err)
	}

	// The older "token" scheme works too; no header at all does not.
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"token " + ghTestToken, 200},
		{"Bearer " + ghTestToken, 200},
		{"", 401},
		{"Basic " + ghTestToken, 401},
	} {
		t.Run(tc.auth, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/user", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /user with %q = %d %s, want %d", tc.auth, resp.StatusCode, body, tc.want)
			}
			if resp.Header.Get("X-RateLimit-Remaining") == "" {
				t.Errorf("GET /user with %q has no x-ratelimit-remaining", tc.auth)
			}
		})
	}
}

func TestGitHubComments(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	c, _ := ghStart(t, g, ghTestToken)
	ctx := context.Background()

	const n = 65
	for i := range n {
		body := fmt.Sprintf("comment %d", i)
		got, resp, err := c.Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: &body})
		if err != nil {
			t.Fatalf("CreateComment: %v", err)
		}
		if resp.StatusCode != 201 || got.GetID() == 0 || got.GetUser().GetLogin() != "hookwise-bot" ||
			got.GetHTMLURL() == "" || got.GetNodeID() == "" || got.GetCreatedAt().IsZero() {
			t.Fatalf("CreateComment = %d %+v, want 201 with id, user, html_url, node_id, created_at", resp.StatusCode, got)
		}
	}

	var all []*github.IssueComment
	var pages []int
	opts := &github.IssueListCommentsOptions{}
	for {
		cs, resp, err := c.Issues.ListComments(ctx, "o", "r", 7, opts)
		if err != nil {
			t.Fatalf("ListComments: %v", err)
		}
		all = append(all, cs...)
		pages = append(pages, len(cs))
		if resp.NextPage == 0 {
			if resp.LastPage != 0 || resp.FirstPage != 1 {
				t.Errorf("last page links: first %d last %d, want 1 and none", resp.FirstPage, resp.LastPage)
			}
			break
		}
		if resp.LastPage != 3 {
			t.Errorf("LastPage = %d, want 3", resp.LastPage)
		}
		opts.Page = resp.NextPage
	}
	if fmt.Sprint(pages) != "[30 30 5]" {
		t.Errorf("page sizes = %v, want [30 30 5]", pages)
	}
	for i, cm := range all {
		if want := fmt.Sprintf("comment %d", i); cm.GetBody() != want {
			t.Fatalf("comment %d body = %q, want %q", i, cm.GetBody(), want)
		}
	}

	big, _, err := c.Issues.ListComments(ctx, "o", "r", 7, &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 500}})
	if err != nil || len(big) != 65 {
		t.Errorf("ListComments(per_page=500) = %d, %v; want 65 (per_page capped at 100)", len(big), err)
	}

	id := all[3].GetID()
	edited := "edited"
	got, _, err := c.Issues.EditComment(ctx, "o", "r", id, &github.IssueComment{Body: &edited})
	if err != nil || got.GetBody() != "edited" {
		t.Fatalf("EditComment = %v, %v; want body edited", got, err)
	}
	one, _, err := c.Issues.GetComment(ctx, "o", "r", id)
	if err != nil || one.GetBody() != "edited" {
		t.Errorf("GetComment = %v, %v; want edited", one, err)
	}
	if cs := g.Comments("o/r", 7); len(cs) != n || cs[3].Body != "edited" || cs[3].User != "hookwise-bot" {
		t.Errorf("g.Comments = %d comments (4th %+v), want %d with edited 4th by hookwise-bot", len(cs), cs[3], n)
	}

	for _, tc := range []struct {
		name string
		call func() error
		want int
	}{
		{"edit unknown comment", func() error {
			_, _, err := c.Issues.EditComment(ctx, "o", "r", 999999, &github.IssueComment{Body: &edited})
			return err
		}, 404},
		{"comment from other repo", func() error { _, _, err := c.Issues.GetComment(ctx, "o", "other", id); return err }, 404},
		{"empty body", func() error {
			empty := ""
			_, _, err := c.Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: &empty})
			return err
		}, 422},
		{"body too long", func() error {
			long := strings.Repeat("x", 65537)
			_, _, err := c.Issues.CreateComment(ctx, "o", "r", 7, &github.IssueComment{Body: &long})
			return err
		}, 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ghStatus(tc.call()); got != tc.want {
				t.Errorf("%s: status = %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}

func TestGitHubLabelsAndState(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	c, _ := ghStart(t, g, ghTestToken)
	ctx := context.Background()

	g.SetRepoLabels("o/r", []string{"bug", "enhancement", "question"})
	ls, _, err := c.Issues.ListLabels(ctx, "o", "r", &github.ListOptions{PerPage: 2})
	if err != nil || len(ls) != 2 || ls[0].GetName() != "bug" || ls[0].GetColor() == "" {
		t.Fatalf("ListLabels(per_page=2) = %v, %v; want [bug enhancement]", ls, err)
	}

	got, resp, err := c.Issues.AddLabelsToIssue(ctx, "o", "r", 3, []string{"BUG", "needs-triage"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("AddLabelsToIssue: %v", err)
	}
	var names []string
	for _, l := range got {
		names = append(names, l.GetName())
	}
	if fmt.Sprint(names) != "[bug needs-triage]" {
		t.Errorf("AddLabelsToIssue = %v, want [bug needs-triage]", names)
	}
	if fmt.Sprint(g.Labels("o/r", 3)) != "[bug needs-triage]" {
		t.Errorf("g.Labels = %v, want [bug needs-triage]", g.Labels("o/r", 3))
	}
	ls, _, _ = c.Issues.ListLabels(ctx, "o", "r", nil)
	if len(ls) != 4 {
		t.Errorf("repo labels after adding a new one = %d, want 4", len(ls))
	}

	if s := g.State("o/r", 3); s != "open" {
		t.Errorf("State before close = %q, want open", s)
	}
	is, _, err := c.Issues.Edit(ctx, "o", "r", 3, &github.IssueRequest{State: github.Ptr("closed"), StateReason: github.Ptr("not_planned")})
	if err != nil || is.GetState() != "closed" || is.GetStateReason() != "not_planned" || is.ClosedAt == nil {
		t.Fatalf("Edit(close) = %+v, %v; want closed/not_planned", is, err)
	}
	if s := g.State("o/r", 3); s != "closed" {
		t.Errorf("State after close = %q, want closed", s)
	}
	is, _, err = c.Issues.Get(ctx, "o", "r", 3)
	if err != nil || is.GetState() != "closed" || len(is.Labels) != 2 || is.IsPullRequest() {
		t.Errorf("Get = %+v, %v; want closed issue with 2 labels", is, err)
	}
	_, _, err = c.Issues.Edit(ctx, "o", "r", 3, &github.IssueRequest{State: github.Ptr("gone")})
	if got := ghStatus(err); got != 422 {
		t.Errorf("Edit(state=gone) status = %d, want 422", got)
	}
}

func TestGitHubPullRequestsAndJobs(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	c, _ := ghStart(t, g, ghTestToken)
	ctx := context.Background()

	var files []fake.PRFile
	for i := range 130 {
		files = append(files, fake.PRFile{Filename: fmt.Sprintf("f%03d.go", i), Status: "modified", Additions: 2, Deletions: 1, Patch: "@@ -1 +1 @@"})
	}
	g.AddPullRequest("o/r", 12, files)
	var got []*github.CommitFile
	opts := &github.ListOptions{PerPage: 100}
	for {
		fs, resp, err := c.PullRequests.ListFiles(ctx, "o", "r", 12, opts)
		if err != nil {
			t.Fatalf("ListFiles: %v", err)
		}
		got = append(got, fs...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(got) != 130 || got[129].GetFilename() != "f129.go" || got[0].GetChanges() != 3 || got[0].GetPatch() == "" {
		t.Errorf("ListFiles = %d files, want 130 ending f129.go with changes and patch", len(got))
	}

	pr, _, err := c.PullRequests.Get(ctx, "o", "r", 12)
	if err != nil || len(pr.GetHead().GetSHA()) != 40 || pr.GetChangedFiles() != 130 || pr.GetNumber() != 12 {
		t.Errorf("PullRequests.Get = %+v, %v; want head sha and 130 changed files", pr, err)
	}
	is, _, err := c.Issues.Get(ctx, "o", "r", 12)
	if err != nil || !is.IsPullRequest() {
		t.Errorf("Issues.Get(PR) = %+v, %v; want a pull request", is, err)
	}
	g.AddIssue("o/r", 13, "plain issue")
	if _, _, err := c.PullRequests.Get(ctx, "o", "r", 13); ghStatus(err) != 404 {
		t.Errorf("PullRequests.Get(issue) = %v, want 404", err)
	}

	g.AddWorkflowJobs("o/r", 555, []fake.WorkflowJob{
		{Name: "build", Conclusion: "success"},
		{ID: 77, Name: "test", Conclusion: "failure", Steps: []fake.WorkflowStep{
			{Name: "checkout", Conclusion: "success", Number: 1},
			{Name: "go test", Conclusion: "failure", Number: 2},
		}},
	})
	jobs, _, err := c.Actions.ListWorkflowJobs(ctx, "o", "r", 555, nil)
	if err != nil {
		t.Fatalf("ListWorkflowJobs: %v", err)
	}
	if jobs.GetTotalCount() != 2 || len(jobs.Jobs) != 2 {
		t.Fatalf("ListWorkflowJobs = %d jobs (total %d), want 2", len(jobs.Jobs), jobs.GetTotalCount())
	}
	j := jobs.Jobs[1]
	if j.GetID() != 77 || j.GetConclusion() != "failure" || !strings.Contains(j.GetHTMLURL(), "/actions/runs/555/job/77") ||
		len(j.Steps) != 2 || j.Steps[1].GetName() != "go test" || j.Steps[1].GetNumber() != 2 {
		t.Errorf("job = %+v, want test/failure with html_url and 2 steps", j)
	}
	if jobs.Jobs[0].GetID() == 0 {
		t.Errorf("job without ID got none")
	}
}

func TestGitHubStrictAndUnknown(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}, Strict: true})
	c, srv := ghStart(t, g, ghTestToken)
	ctx := context.Background()

	if _, _, err := c.Issues.Get(ctx, "o", "r", 1); ghStatus(err) != 404 {
		t.Errorf("Strict Issues.Get(unknown) = %v, want 404", err)
	}
	if _, _, err := c.Actions.ListWorkflowJobs(ctx, "o", "r", 9, nil); ghStatus(err) != 404 {
		t.Errorf("Strict ListWorkflowJobs(unknown) = %v, want 404", err)
	}
	g.AddIssue("o/r", 1, "hello")
	if is, _, err := c.Issues.Get(ctx, "o", "r", 1); err != nil || is.GetTitle() != "hello" {
		t.Errorf("Strict Issues.Get(added) = %v, %v; want title hello", is, err)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/repos/o/r/branches", nil)
	req.Header.Set("Authorization", "Bearer "+ghTestToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"message":"Not Found"`) ||
		!strings.Contains(string(body), `"documentation_url":"https://docs.github.com/rest"`) {
		t.Errorf("GET unknown path = %d %s, want 404 with GitHub's error body", resp.StatusCode, body)
	}
}

func TestGitHubFailNext(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	ctx := context.Background()

	c, _ := ghStart(t, g, ghTestToken)
	g.FailNext("POST", "/repos/o/r/issues/", 502, 2)
	body := "hi"
	for i := range 2 {
		if _, _, err := c.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: &body}); ghStatus(err) != 502 {
			t.Fatalf("CreateComment #%d = %v, want 502", i, err)
		}
	}
	if _, _, err := c.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: &body}); err != nil {
		t.Fatalf("CreateComment after faults: %v", err)
	}

	// Each rate-limit case gets a fresh client: go-github remembers limits.
	c429, _ := ghStart(t, g, ghTestToken)
	g.FailNext("", "/user", 429, 1)
	_, _, err := c429.Users.Get(ctx, "")
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.RetryAfter == nil || *abuse.RetryAfter != time.Second {
		t.Errorf("429 = %#v, want AbuseRateLimitError with RetryAfter 1s", err)
	}

	c403, _ := ghStart(t, g, ghTestToken)
	g.FailNext("GET", "/user", 403, 1)
	_, _, err = c403.Users.Get(ctx, "")
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Rate.Remaining != 0 || time.Until(rl.Rate.Reset.Time) > 3*time.Second {
		t.Errorf("403 = %#v, want RateLimitError resetting within seconds", err)
	}

	requests, writes := g.Stats()
	if requests != 5 || writes != 3 {
		t.Errorf("Stats() = %d, %d; want 5, 3", requests, writes)
	}
}

func TestGitHubRateLimitExhausted(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}, RateLimit: 2})
	ctx := context.Background()
	c, _ := ghStart(t, g, ghTestToken)
	for i := range 2 {
		if _, _, err := c.Users.Get(ctx, ""); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	c2, _ := ghStart(t, g, ghTestToken) // a fresh client that does not know the limit is spent
	_, _, err := c2.Users.Get(ctx, "")
	var rl *github.RateLimitError
	if !errors.As(err, &rl) || rl.Response.StatusCode != 403 || rl.Rate.Limit != 2 {
		t.Errorf("request past the limit = %v, want 403 RateLimitError with limit 2", err)
	}
}

func TestGitHubApp(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := fake.NewGitHub(fake.GitHubOptions{AppID: 42, AppPublicKey: &key.PublicKey, AppSlug: "hw"})
	ctx := context.Background()

	sign := func(k *rsa.PrivateKey, iss string, exp time.Duration) string {
		now := time.Now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
			Issuer:    iss,
			IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
		}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	for _, tc := range []struct {
		name string
		jwt  string
		want int
	}{
		{"wrong key", sign(other, "42", 9*time.Minute), 401},
		{"wrong issuer", sign(key, "43", 9*time.Minute), 401},
		{"expired", sign(key, "42", -30*time.Second), 401},
		{"exp too far", sign(key, "42", time.Hour), 401},
		{"not a jwt", "ghp_nope", 401},
		{"valid", sign(key, "42", 9*time.Minute), 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := ghStart(t, g, tc.jwt)
			tok, resp, err := c.Apps.CreateInstallationToken(ctx, 7, nil)
			if resp == nil || resp.StatusCode != tc.want {
				t.Fatalf("CreateInstallationToken(%s) = %v, want %d", tc.name, err, tc.want)
			}
			if tc.want != 201 {
				return
			}
			if !strings.HasPrefix(tok.GetToken(), "ghs_") || time.Until(tok.GetExpiresAt().Time) < 50*time.Minute {
				t.Errorf("token = %q expiring %v, want ghs_… in about an hour", tok.GetToken(), tok.GetExpiresAt())
			}
			app, _, err := c.Apps.Get(ctx, "")
			if err != nil || app.GetSlug() != "hw" || app.GetID() != 42 {
				t.Errorf("Apps.Get = %+v, %v; want slug hw, id 42", app, err)
			}

			ic, _ := ghStart(t, g, tok.GetToken())
			body := "from the app"
			cm, _, err := ic.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: &body})
			if err != nil || cm.GetUser().GetLogin() != "hw[bot]" || cm.GetUser().GetType() != "Bot" {
				t.Errorf("CreateComment with installation token = %+v, %v; want by hw[bot] (Bot)", cm.GetUser(), err)
			}
			if _, _, err := ic.Users.Get(ctx, ""); ghStatus(err) != 403 {
				t.Errorf("GET /user with installation token = %v, want 403 as on GitHub", err)
			}
			if _, _, err := ic.Apps.CreateInstallationToken(ctx, 7, nil); ghStatus(err) != 401 {
				t.Errorf("installation token used as JWT = %v, want 401", err)
			}
		})
	}
}

func TestGitHubConcurrent(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}, Latency: time.Millisecond})
	c, _ := ghStart(t, g, ghTestToken)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			body := strconv.Itoa(i)
			if _, _, err := c.Issues.CreateComment(ctx, "o", "r", 1+i%3, &github.IssueComment{Body: &body}); err != nil {
				t.Errorf("CreateComment: %v", err)
			}
			if _, _, err := c.Issues.AddLabelsToIssue(ctx, "o", "r", 1+i%3, []string{"l" + body}); err != nil {
				t.Errorf("AddLabelsToIssue: %v", err)
			}
		})
	}
	wg.Wait()
	total := 0
	for n := 1; n <= 3; n++ {
		total += len(g.Comments("o/r", n))
	}
	if total != 20 {
		t.Errorf("comments = %d, want 20", total)
	}
	if _, writes := g.Stats(); writes != 40 {
		t.Errorf("writes = %d, want 40", writes)
	}
}

func TestGitHubWriteFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		after     bool
		wantSaved func(faulted int) int // comments stored after 500 creations
	}{
		{"not performed", false, func(faulted int) int { return 500 - faulted }},
		{"performed, then 502", true, func(int) int { return 500 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}, WriteFaultRate: 0.2, WriteFaultAfter: tt.after, Seed: 3})
			c, _ := ghStart(t, g, ghTestToken)
			ctx := context.Background()
			const writes = 500
			faulted := 0
			for i := range writes {
				body := strconv.Itoa(i)
				_, _, err := c.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: &body})
				if err == nil {
					continue
				}
				var er *github.ErrorResponse
				if !errors.As(err, &er) || er.Response.StatusCode != 502 || er.Message != "Server Error" {
					t.Fatalf("CreateComment #%d = %v, want nil or a 502 *github.ErrorResponse with message Server Error", i, err)
				}
				faulted++
			}
			t.Logf("%d of %d writes faulted", faulted, writes)
			if frac := float64(faulted) / writes; frac < 0.15 || frac > 0.25 {
				t.Errorf("faulted %d of %d writes (%.3f), want 0.15–0.25", faulted, writes, frac)
			}
			if got, want := len(g.Comments("o/r", 1)), tt.wantSaved(faulted); got != want {
				t.Errorf("comments stored = %d, want %d (%d faulted)", got, want, faulted)
			}
			// Reads never fault.
			for range 50 {
				if _, _, err := c.Issues.Get(ctx, "o", "r", 1); err != nil {
					t.Fatalf("Issues.Get: %v", err)
				}
			}
			if got := len(g.WriteTimes()[ghTestToken]); got != writes {
				t.Errorf("len(WriteTimes()[token]) = %d, want %d: faulted writes count too", got, writes)
			}
		})
	}
}

func TestGitHubWriteTimes(t *testing.T) {
	t.Parallel()
	const other = "ghp_othertoken"
	var mu sync.Mutex
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = t0.Add(d) }
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken, other}, Now: clock})
	c, _ := ghStart(t, g, ghTestToken)
	co, _ := ghStart(t, g, other)
	anon, _ := ghStart(t, g, "")
	ctx := context.Background()
	body := "hi"
	write := func(c *github.Client) error {
		_, _, err := c.Issues.CreateComment(ctx, "o", "r", 1, &github.IssueComment{Body: &body})
		return err
	}

	set(0)
	_ = write(c)
	set(time.Second)
	_ = write(c)
	set(1500 * time.Millisecond)
	g.FailNext("POST", "/repos/o/r/issues/1/comments", 502, 1)
	if err := write(c); ghStatus(err) != 502 { // a faulted write still counts
		t.Fatalf("faulted write = %v, want 502", err)
	}
	set(2 * time.Second)
	_ = write(c)
	_ = write(co)
	_ = write(co)
	if err := write(anon); ghStatus(err) != 401 { // not counted: unauthenticated
		t.Fatalf("anonymous write = %v, want 401", err)
	}
	set(10 * time.Second)
	_ = write(c)
	if _, _, err := c.Issues.Get(ctx, "o", "r", 1); err != nil { // not counted: a read
		t.Fatal(err)
	}

	at := func(ds ...time.Duration) []time.Time {
		var ts []time.Time
		for _, d := range ds {
			ts = append(ts, t0.Add(d))
		}
		return ts
	}
	want := map[string][]time.Time{
		ghTestToken: at(0, time.Second, 1500*time.Millisecond, 2*time.Second, 10*time.Second),
		other:       at(2*time.Second, 2*time.Second),
	}
	if got := g.WriteTimes(); !reflect.DeepEqual(got, want) {
		t.Errorf("WriteTimes() = %v, want %v", got, want)
	}

	windows := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{time.Nanosecond, 2},    // the other token's two at once
		{time.Second, 2},        // [1s, 2s) holds 1s and 1.5s, not 2s
		{time.Second + 1, 3},    // 1s, 1.5s and 2s
		{2 * time.Second, 3},    // [0, 2s) holds three
		{2*time.Second + 1, 4},  // 0 to 2s
		{10*time.Second - 1, 4}, // 1s to 10s
		{time.Minute, 5},        // all of the first token's
		{time.Hour, 5},          // credentials are counted apart
	}
	for _, w := range windows {
		if got := g.MaxWritesInWindow(w.d); got != w.want {
			t.Errorf("MaxWritesInWindow(%v) = %d, want %d", w.d, got, w.want)
		}
	}
}

// GET /meta answers without credentials, in GitHub's shape; a token it does
// not know is refused as everywhere else.
func TestGitHubMeta(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	ctx := context.Background()
	anon, _ := ghStart(t, g, "")
	meta, resp, err := anon.Meta.Get(ctx)
	if err != nil {
		t.Fatalf("anonymous Meta.Get: %v", err)
	}
	if want := []string{"192.30.252.0/22", "185.199.108.0/22", "140.82.112.0/20", "143.55.64.0/20", "2a0a:a440::/29", "2606:50c0::/32"}; !reflect.DeepEqual(meta.Hooks, want) {
		t.Errorf("meta.Hooks = %v, want %v", meta.Hooks, want)
	}
	if meta.SSHKeyFingerprints["SHA256_ED25519"] == "" || len(meta.Web) == 0 || len(meta.API) == 0 || len(meta.Git) == 0 {
		t.Errorf("meta = %+v, want ssh_key_fingerprints, web, api and git filled in", meta)
	}
	if got := resp.Header.Get("X-RateLimit-Limit"); got != "60" {
		t.Errorf("anonymous X-RateLimit-Limit = %q, want 60", got)
	}

	g.SetHookRanges([]string{"203.0.113.0/24"})
	authed, _ := ghStart(t, g, ghTestToken)
	if meta, _, err := authed.Meta.Get(ctx); err != nil || !reflect.DeepEqual(meta.Hooks, []string{"203.0.113.0/24"}) {
		t.Errorf("Meta.Get after SetHookRanges = %v, %v; want hooks [203.0.113.0/24]", meta, err)
	}
	bad, _ := ghStart(t, g, "ghp_unknown")
	if _, _, err := bad.Meta.Get(ctx); ghStatus(err) != http.StatusUnauthorized {
		t.Errorf("Meta.Get with an unknown token: %v, want 401", err)
	}
}
