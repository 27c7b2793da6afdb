package gh

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
)

const testToken = "ghp_adaptertesttoken0123456789"

// startFake serves a fake GitHub and returns it with its URL.
func startFake(t *testing.T, opts fake.GitHubOptions) (*fake.GitHub, string) {
	t.Helper()
	g := fake.NewGitHub(opts)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func genKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// exercise runs every adapter method against g as repo r and checks what
// the fake recorded. author is who our writes should appear as.
func exercise(t *testing.T, c *Client, g *fake.GitHub, r Repo, author string) {
	t.Helper()
	ctx := context.Background()
	name := r.String()

	login, err := c.Login(ctx, r)
	if err != nil || login != author {
		t.Fatalf("Login = %q, %v; want %q", login, err, author)
	}

	for i := range 249 {
		g.AddComment(name, 1, "alice", fmt.Sprintf("c%d", i))
	}
	cm, err := c.CreateComment(ctx, r, 1, "hello <!-- hookwise:issue -->")
	if err != nil {
		t.Fatalf("CreateComment: %v", err)
	}
	if cm.ID == 0 || cm.Author != author {
		t.Errorf("CreateComment = %+v, want an id and author %q", cm, author)
	}
	if err := c.EditComment(ctx, r, cm.ID, "edited <!-- hookwise:issue -->"); err != nil {
		t.Fatalf("EditComment: %v", err)
	}
	cs, total, err := c.ListComments(ctx, r, 1, 300)
	if err != nil {
		t.Fatalf("ListComments: %v", err)
	}
	if len(cs) != 250 || total != 250 {
		t.Fatalf("ListComments = %d comments of %d, want 250 of 250", len(cs), total)
	}
	if cs[0].Body != "c0" || cs[0].Author != "alice" || cs[0].AuthorType != "User" {
		t.Errorf("ListComments[0] = %+v, want c0 by alice (User)", cs[0])
	}
	if last := cs[249]; last.ID != cm.ID || last.Body != "edited <!-- hookwise:issue -->" {
		t.Errorf("ListComments[249] = %+v, want our edited comment %d", last, cm.ID)
	}

	var labels []string
	for i := range 120 {
		labels = append(labels, "label-"+strconv.Itoa(i))
	}
	g.SetRepoLabels(name, labels)
	got, err := c.RepoLabels(ctx, r, 500)
	if err != nil || len(got) != 120 || got[119] != "label-119" {
		t.Errorf("RepoLabels = %d labels, %v; want 120", len(got), err)
	}
	if err := c.AddLabels(ctx, r, 1, []string{"label-3", "label-7"}); err != nil {
		t.Fatalf("AddLabels: %v", err)
	}
	if got := g.Labels(name, 1); fmt.Sprint(got) != "[label-3 label-7]" {
		t.Errorf("labels on #1 = %v, want [label-3 label-7]", got)
	}
	if err := c.AddLabels(ctx, r, 1, nil); err != nil {
		t.Errorf("AddLabels(nil) = %v, want nil", err)
	}

	if err := c.CloseIssue(ctx, r, 1, "not_planned", nil); err != nil {
		t.Fatalf("CloseIssue: %v", err)
	}
	if s := g.State(name, 1); s != "closed" {
		t.Errorf("state of #1 = %q, want closed", s)
	}
	// Closing with labels keeps the ones the issue has, in one write.
	_, writes := g.Stats()
	if err := c.CloseIssue(ctx, r, 1, "not_planned", []string{"invalid", "LABEL-3"}); err != nil {
		t.Fatalf("CloseIssue with labels: %v", err)
	}
	if got := g.Labels(name, 1); fmt.Sprint(got) != "[label-3 label-7 invalid]" {
		t.Errorf("labels on #1 after closing with labels = %v, want [label-3 label-7 invalid]", got)
	}
	if _, after := g.Stats(); after-writes != 1 {
		t.Errorf("closing with labels took %d writes, want 1", after-writes)
	}

	var files []fake.PRFile
	for i := range 230 {
		files = append(files, fake.PRFile{Filename: fmt.Sprintf("f%d.go", i), Status: "modified", Additions: i, Deletions: 1, Patch: "@@"})
	}
	g.AddPullRequest(name, 2, files)
	fs, total, err := c.PullRequestFiles(ctx, r, 2, 3000)
	if err != nil || len(fs) != 230 || total != 230 {
		t.Fatalf("PullRequestFiles = %d files of %d, %v; want 230 of 230", len(fs), total, err)
	}
	if f := fs[229]; f.Name != "f229.go" || f.Additions != 229 || f.Deletions != 1 || f.Status != "modified" || f.Patch != "@@" {
		t.Errorf("PullRequestFiles[229] = %+v, want f229.go +229 -1", f)
	}

	g.AddWorkflowJobs(name, 99, []fake.WorkflowJob{{ID: 5, Name: "test", Conclusion: "failure", Steps: []fake.WorkflowStep{
		{Name: "setup", Conclusion: "success", Number: 1}, {Name: "go test", Conclusion: "failure", Number: 2},
	}}})
	jobs, unread, err := c.WorkflowJobs(ctx, r, 99, nil, 50)
	if err != nil || len(jobs) != 1 || unread != 0 {
		t.Fatalf("WorkflowJobs = %v, %d unread, %v; want 1 job, none unread", jobs, unread, err)
	}
	if j := jobs[0]; j.Name != "test" || j.Conclusion != "failure" || !strings.HasSuffix(j.URL, "/actions/runs/99/job/5") ||
		len(j.Steps) != 2 || j.Steps[1] != (Step{"go test", "failure"}) {
		t.Errorf("WorkflowJobs[0] = %+v, want test/failure with 2 steps and a job URL", j)
	}
}

func TestClientPAT(t *testing.T) {
	t.Parallel()
	g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}})
	c := newClient(t, Options{BaseURL: url, Token: testToken})
	exercise(t, c, g, Repo{Owner: "o", Name: "r"}, "hookwise-bot")
}

func TestClientApp(t *testing.T) {
	t.Parallel()
	key, pemKey := genKey(t)
	g, url := startFake(t, fake.GitHubOptions{AppID: 321, AppPublicKey: &key.PublicKey, AppSlug: "hookwise-test"})
	c := newClient(t, Options{BaseURL: url + "/", AppID: 321, PrivateKey: pemKey})
	exercise(t, c, g, Repo{Owner: "o", Name: "r", Installation: 11}, "hookwise-test[bot]")

	installations := func() int {
		n := 0
		c.app.mu.Lock()
		defer c.app.mu.Unlock()
		for range c.app.installs {
			n++
		}
		return n
	}
	_, writesBefore := g.Stats()
	// A second installation gets its own token; the first reuses its own.
	ctx := context.Background()
	if _, err := c.CreateComment(ctx, Repo{Owner: "p", Name: "q", Installation: 12}, 1, "x"); err != nil {
		t.Fatalf("CreateComment(installation 12): %v", err)
	}
	if _, err := c.CreateComment(ctx, Repo{Owner: "o", Name: "r", Installation: 11}, 1, "y"); err != nil {
		t.Fatalf("CreateComment(installation 11): %v", err)
	}
	if _, writes := g.Stats(); writes-writesBefore != 3 || installations() != 2 {
		t.Errorf("writes = %d, installations = %d; want 3 (one token + two comments) and 2", writes-writesBefore, installations())
	}

	// Near expiry the token is replaced before use.
	c.app.mu.Lock()
	in := c.app.installs[11]
	c.app.mu.Unlock()
	in.mu.Lock()
	in.expires = time.Now().Add(30 * time.Second)
	in.mu.Unlock()
	_, writesBefore = g.Stats()
	if _, _, err := c.ListComments(ctx, Repo{Owner: "o", Name: "r", Installation: 11}, 1, 100); err != nil {
		t.Fatalf("ListComments after expiry: %v", err)
	}
	if _, writes := g.Stats(); writes-writesBefore != 1 {
		t.Errorf("writes after token expiry = %d, want 1 (a new token)", writes-writesBefore)
	}

	if _, _, err := c.ListComments(ctx, Repo{Owner: "o", Name: "r"}, 1, 100); err == nil {
		t.Errorf("ListComments without installation = nil error, want one")
	}
}

func TestClientAppWrongKey(t *testing.T) {
	t.Parallel()
	key, _ := genKey(t)
	_, otherPEM := genKey(t)
	_, url := startFake(t, fake.GitHubOptions{AppID: 321, AppPublicKey: &key.PublicKey})
	c := newClient(t, Options{BaseURL: url, AppID: 321, PrivateKey: otherPEM})
	_, err := c.CreateComment(context.Background(), Repo{Owner: "o", Name: "r", Installation: 1}, 1, "x")
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Temporary() {
		t.Fatalf("CreateComment with a wrong app key = %v, want permanent 401 *Error", err)
	}
	if strings.Contains(err.Error(), "eyJ") {
		t.Errorf("error %q contains a JWT", err)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	key, pkcs1 := genKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	escaped := []byte(strings.ReplaceAll(string(pkcs1), "\n", `\n`))
	garbage := []byte("-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END RSA PRIVATE KEY-----\n")

	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"token", Options{Token: "t"}, false},
		{"app pkcs1", Options{AppID: 1, PrivateKey: pkcs1}, false},
		{"app pkcs8", Options{AppID: 1, PrivateKey: pkcs8}, false},
		{"app key with escaped newlines", Options{AppID: 1, PrivateKey: escaped}, false},
		{"enterprise url", Options{Token: "t", BaseURL: "https://ghe.example.com/api/v3"}, false},
		{"nothing", Options{}, true},
		{"token and app", Options{Token: "t", AppID: 1, PrivateKey: pkcs1}, true},
		{"app id without key", Options{AppID: 1}, true},
		{"key without app id", Options{PrivateKey: pkcs1}, true},
		{"not pem", Options{AppID: 1, PrivateKey: []byte("secret-key-material")}, true},
		{"bad key in pem", Options{AppID: 1, PrivateKey: garbage}, true},
		{"relative url", Options{Token: "t", BaseURL: "api.github.com"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New(%s) = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if err != nil {
				for _, secret := range []string{"secret-key-material", "c2VjcmV0", "MII"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("New(%s) error %q contains key material", tc.name, err)
					}
				}
			}
		})
	}

	c := newClient(t, Options{Token: "t", BaseURL: "https://ghe.example.com/api/v3"})
	if got := c.base.String(); got != "https://ghe.example.com/api/v3/" {
		t.Errorf("base URL = %q, want trailing slash added", got)
	}
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		status      int
		header      map[string]string
		message     string
		temporary   bool
		rateLimited bool
		retryAfter  time.Duration // exact unless fuzzy
		fuzzy       bool          // retryAfter is a lower bound, within 2s
	}{
		{name: "404", status: 404, message: "Not Found"},
		{name: "400", status: 400, message: "Problems parsing JSON"},
		{name: "401", status: 401, message: "Bad credentials"},
		{name: "403 forbidden", status: 403, message: "Resource not accessible by integration"},
		{name: "410", status: 410, message: "Issues are disabled for this repo"},
		{name: "422", status: 422, message: "Validation Failed"},
		{name: "408", status: 408, message: "Timeout", temporary: true},
		{name: "409", status: 409, message: "Conflict", temporary: true},
		{name: "500", status: 500, message: "Server Error", temporary: true},
		{name: "502", status: 502, message: "Server Error", temporary: true},
		{name: "503", status: 503, message: "Unavailable", temporary: true},
		{
			name: "403 primary limit", status: 403, message: "API rate limit exceeded for user ID 1.",
			header:    map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "+30"},
			temporary: true, rateLimited: true, retryAfter: 29 * time.Second, fuzzy: true,
		},
		{
			name: "429 retry-after", status: 429, message: "Too Many Requests",
			header:    map[string]string{"Retry-After": "7"},
			temporary: true, rateLimited: true, retryAfter: 7 * time.Second,
		},
		{
			name: "403 secondary by message", status: 403,
			message:   "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			temporary: true, rateLimited: true, retryAfter: time.Minute,
		},
		{
			name: "403 secondary with retry-after", status: 403, message: "You have exceeded a secondary rate limit.",
			header:    map[string]string{"Retry-After": "42"},
			temporary: true, rateLimited: true, retryAfter: 42 * time.Second,
		},
		{
			name: "429 asking for a day is capped at an hour", status: 429, message: "Too Many Requests",
			header:    map[string]string{"Retry-After": "86400"},
			temporary: true, rateLimited: true, retryAfter: time.Hour,
		},
		{
			name: "secondary asking for a day is capped at an hour", status: 403, message: "You have exceeded a secondary rate limit.",
			header:    map[string]string{"Retry-After": "86400"},
			temporary: true, rateLimited: true, retryAfter: time.Hour,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					if strings.HasPrefix(v, "+") { // relative reset time
						n, _ := strconv.Atoi(v[1:])
						v = strconv.FormatInt(time.Now().Add(time.Duration(n)*time.Second).Unix(), 10)
					}
					w.Header().Set(k, v)
				}
				w.Header().Set("X-GitHub-Request-Id", "ABCD:1234")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"message":%q,"documentation_url":"https://docs.github.com/rest"}`, tc.message)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, Options{BaseURL: srv.URL, Token: testToken})

			err := c.EditComment(context.Background(), Repo{Owner: "o", Name: "r"}, 1, "x")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("EditComment = %v (%T), want an *Error", err, err)
			}
			if e.Status != tc.status || e.Temporary() != tc.temporary || e.RateLimited != tc.rateLimited {
				t.Errorf("error = status %d temporary %v rate limited %v, want %d %v %v",
					e.Status, e.Temporary(), e.RateLimited, tc.status, tc.temporary, tc.rateLimited)
			}
			if tc.fuzzy {
				if e.RetryAfter < tc.retryAfter || e.RetryAfter > tc.retryAfter+2*time.Second {
					t.Errorf("RetryAfter = %v, want about %v", e.RetryAfter, tc.retryAfter)
				}
			} else if e.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tc.retryAfter)
			}
			if e.RequestID != "ABCD:1234" || !strings.Contains(e.Message, tc.message) {
				t.Errorf("RequestID, Message = %q, %q; want ABCD:1234, %q", e.RequestID, e.Message, tc.message)
			}
			if !strings.Contains(err.Error(), "edit comment 1 in o/r") {
				t.Errorf("Error() = %q, want the operation named", err)
			}
		})
	}
}

// After a primary rate limit go-github refuses further calls itself until
// the reset; those refusals must classify the same way.
func TestErrorRateLimitRemembered(t *testing.T) {
	t.Parallel()
	reset := time.Now().Add(20 * time.Second).Unix()
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
		w.WriteHeader(403)
		fmt.Fprint(w, `{"message":"API rate limit exceeded"}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, Options{BaseURL: srv.URL, Token: testToken})
	for i := range 2 {
		_, _, err := c.ListComments(context.Background(), Repo{Owner: "o", Name: "r"}, 1, 100)
		var e *Error
		if !errors.As(err, &e) || !e.Temporary() || !e.RateLimited || e.RetryAfter < 10*time.Second {
			t.Errorf("call %d = %v, want temporary rate limit with RetryAfter near 20s", i, err)
		}
	}
	if calls != 1 {
		t.Errorf("server calls = %d, want 1 (second refused client-side)", calls)
	}
}

func TestErrorNetworkAndContext(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, Options{BaseURL: url, Token: testToken})
	r := Repo{Owner: "o", Name: "r"}

	_, err := c.CreateComment(context.Background(), r, 1, "x")
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 || !e.Temporary() {
		t.Errorf("CreateComment to a closed server = %v, want temporary *Error with status 0", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.CreateComment(ctx, r, 1, "x")
	if !errors.As(err, &e) || e.Temporary() || !errors.Is(err, context.Canceled) {
		t.Errorf("CreateComment with cancelled context = %v, want permanent *Error wrapping context.Canceled", err)
	}
}

func TestErrorNeverContainsToken(t *testing.T) {
	t.Parallel()
	const installToken = "ghs_installationtokenvalue123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A misbehaving proxy that echoes credentials back.
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"message":"Bad credentials: %s / %s / %s"}`, r.Header.Get("Authorization"), testToken, installToken)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, Options{BaseURL: srv.URL, Token: testToken})
	_, err := c.CreateComment(context.Background(), Repo{Owner: "o", Name: "r"}, 1, "x")
	if err == nil {
		t.Fatal("CreateComment = nil error, want 401")
	}
	for _, secret := range []string{testToken, installToken, "adaptertesttoken"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Error() = %q, contains a token", err)
		}
	}

	// The same holds with the fake and a token it does not know.
	_, url := startFake(t, fake.GitHubOptions{Tokens: []string{"ghp_other"}})
	c = newClient(t, Options{BaseURL: url, Token: testToken})
	_, err = c.Login(context.Background(), Repo{})
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Temporary() || strings.Contains(err.Error(), testToken) {
		t.Errorf("Login with unknown token = %v, want permanent 401 without the token", err)
	}
}

func TestErrorFromFakeFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status      int
		temporary   bool
		rateLimited bool
	}{
		{404, false, false},
		{422, false, false},
		{502, true, false},
		{403, true, true},
		{429, true, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}})
			c := newClient(t, Options{BaseURL: url, Token: testToken})
			g.FailNext("POST", "/repos/o/r/issues/1/comments", tc.status, 1)
			_, err := c.CreateComment(context.Background(), Repo{Owner: "o", Name: "r"}, 1, "x")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("CreateComment = %v, want *Error", err)
			}
			if e.Status != tc.status || e.Temporary() != tc.temporary || e.RateLimited != tc.rateLimited {
				t.Errorf("CreateComment with injected %d = %+v, want temporary %v, rate limited %v", tc.status, e, tc.temporary, tc.rateLimited)
			}
			if e.RateLimited && (e.RetryAfter <= 0 || e.RetryAfter > 3*time.Second) {
				t.Errorf("RetryAfter = %v, want 1-3s", e.RetryAfter)
			}
			if e.RequestID == "" {
				t.Errorf("RequestID is empty, want the fake's x-github-request-id")
			}
		})
	}
}
