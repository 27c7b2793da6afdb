package main

import (
	"context"
	"github.com/hookwise/hookwise/internal/logtest"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// A permanent error (the model API rejecting the key; GitHub answering 404
// on the comment) puts the delivery in the dead-letter queue after one
// attempt; `hookwise dlq show` says why, with the upstream's answer; once
// the cause is fixed, `hookwise dlq retry` completes it with one comment.
func TestPermanentErrorToDeadLetterAndBack(t *testing.T) {
	tests := []struct {
		name     string
		break_   func(g *fake.GitHub, m *fake.Anthropic)
		fix      func(g *fake.GitHub, m *fake.Anthropic)
		wantShow []string
	}{
		{
			name:     "model answers 401",
			break_:   func(_ *fake.GitHub, m *fake.Anthropic) { m.SetAPIKey("rotated-key") },
			fix:      func(_ *fake.GitHub, m *fake.Anthropic) { m.SetAPIKey("model-key") },
			wantShow: []string{"claude: 401 authentication_error", "invalid x-api-key", "request_id"},
		},
		{
			name: "GitHub answers 404 on the comment",
			break_: func(g *fake.GitHub, _ *fake.Anthropic) {
				g.FailNext("POST", "/repos/acme/app/issues/1/comments", 404, 1)
			},
			fix:      func(*fake.GitHub, *fake.Anthropic) {},
			wantShow: []string{"github: 404 Not Found", "request"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}})
			model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key"})
			endpoint, db, _ := startInProcess(t, github, model)
			t.Setenv("HOOKWISE_DATABASE_URL", db)
			t.Setenv("HOOKWISE_CONFIG", "")
			tt.break_(github, model)

			d := fake.Delivery{Event: "issues", GUID: "dead-1",
				Payload: fake.IssueEvent("opened", "acme/app", 1, "Crash on save", "Saving a file with a long name crashes.", "bob")}
			if code, err := fake.Send(http.DefaultClient, endpoint, apptest.Secret, d); err != nil || code != http.StatusAccepted {
				t.Fatalf("send = %d, %v; want 202", code, err)
			}
			waitStatus(t, db, "dead-1", store.StatusFailed)

			var out, errOut logtest.Buffer
			if err := run([]string{"dlq", "list"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "dead-1") {
				t.Errorf("dlq list = %v:\n%s\nwant it to list dead-1", err, out.String())
			}
			// River records the job's end just after the delivery's status.
			var show string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				out = logtest.Buffer{}
				if err := run([]string{"dlq", "show", "dead-1"}, &out, &errOut); err != nil {
					t.Fatalf("dlq show: %v", err)
				}
				if show = out.String(); strings.Contains(show, `"state": "cancelled"`) {
					break
				}
			}
			for _, want := range append(tt.wantShow, `"state": "cancelled"`, `"attempts": 1`) {
				if !strings.Contains(show, want) {
					t.Errorf("dlq show lacks %q:\n%s", want, show)
				}
			}
			if got := len(github.Comments("acme/app", 1)); got != 0 {
				t.Errorf("comments before the retry = %d, want 0", got)
			}

			tt.fix(github, model)
			out = logtest.Buffer{}
			if err := run([]string{"dlq", "retry", "dead-1"}, &out, &errOut); err != nil {
				t.Fatalf("dlq retry: %v", err)
			}
			waitStatus(t, db, "dead-1", store.StatusDone)
			if got := len(github.Comments("acme/app", 1)); got != 1 {
				t.Errorf("comments after the retry = %d, want 1", got)
			}
			if err := run([]string{"dlq", "retry", "dead-1"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "not in the dead-letter queue") {
				t.Errorf("second dlq retry = %v, want a not-in-the-queue error", err)
			}
		})
	}
}

// startInProcess runs hookwise in this process against the fakes and
// returns its webhook URL, its database path and the fake GitHub's API URL.
func startInProcess(t *testing.T, github *fake.GitHub, model *fake.Anthropic) (endpoint, db, githubURL string) {
	t.Helper()
	r := apptest.Start(t, github, model, nil)
	return r.Endpoint, r.Config.DatabaseURL, r.Config.GitHub.APIURL
}

func waitStatus(t *testing.T, db, guid, want string) {
	t.Helper()
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := st.FindDelivery(context.Background(), guid)
		if err == nil && d.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s: status %q (%v) after 20s, want %q", guid, d.Status, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
