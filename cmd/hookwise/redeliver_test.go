package main

import (
	"fmt"
	"github.com/hookwise/hookwise/internal/logtest"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// GitHub failed to deliver some events (hookwise was down, or a proxy
// failed); `hookwise redeliver` finds them in the hook's log, found by
// itself from the deliveries that did arrive, asks for exactly those again,
// and each recovered delivery is processed once.
func TestRedeliverRecoversMissedDeliveries(t *testing.T) {
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{"gh-token"}})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: "model-key"})
	endpoint, db, ghURL := startInProcess(t, github, model)
	t.Setenv("HOOKWISE_DATABASE_URL", db)
	t.Setenv("GITHUB_TOKEN", "gh-token")
	t.Setenv("GITHUB_API_URL", ghURL)
	cfg := filepath.Join(t.TempDir(), "hookwise.yaml")
	if err := os.WriteFile(cfg, []byte("sweep:\n  window: 72h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOOKWISE_CONFIG", cfg)

	const hook = "repo:acme/app#77"
	issue := func(i int) fake.Delivery {
		return fake.Delivery{Event: "issues", GUID: fmt.Sprintf("guid-%d", i), HookID: "77",
			Payload: fake.IssueEvent("opened", "acme/app", i, fmt.Sprintf("Bug %d", i), "Saving a file with a long name fails.", "bob")}
	}
	// GitHub's log of hook 77: issues 1-3 delivered (hookwise holds them),
	// 4-9 failed (hookwise never saw them), 10 failed once and was
	// redelivered fine before; 11 failed a minute ago, 12 four days ago.
	ago := func(d time.Duration) time.Time { return time.Now().Add(-d) }
	for i := 1; i <= 3; i++ {
		if code, err := fake.Send(http.DefaultClient, endpoint, apptest.Secret, issue(i)); err != nil || code != http.StatusAccepted {
			t.Fatalf("send issue %d = %d, %v", i, code, err)
		}
		github.AddHookDelivery(hook, fake.HookDeliveryRecord{GUID: issue(i).GUID, DeliveredAt: ago(2 * time.Hour), StatusCode: 202, Event: "issues", Action: "opened"})
	}
	var missed []string
	for i := 4; i <= 9; i++ {
		code := 502
		if i%2 == 0 {
			code = 0 // GitHub could not connect at all
		}
		github.AddHookDelivery(hook, fake.HookDeliveryRecord{GUID: issue(i).GUID, DeliveredAt: ago(time.Hour), StatusCode: code, Event: "issues", Action: "opened"})
		missed = append(missed, issue(i).GUID)
	}
	github.AddHookDelivery(hook, fake.HookDeliveryRecord{GUID: issue(10).GUID, DeliveredAt: ago(50 * time.Minute), StatusCode: 503, Event: "issues", Action: "opened"})
	github.AddHookDelivery(hook, fake.HookDeliveryRecord{GUID: issue(10).GUID, DeliveredAt: ago(40 * time.Minute), StatusCode: 202, Redelivery: true, Event: "issues", Action: "opened"})
	github.AddHookDelivery(hook, fake.HookDeliveryRecord{GUID: issue(11).GUID, DeliveredAt: ago(10 * time.Second), StatusCode: 502, Event: "issues", Action: "opened"})
	github.AddHookDelivery(hook, fake.HookDeliveryRecord{GUID: issue(12).GUID, DeliveredAt: ago(96 * time.Hour), StatusCode: 502, Event: "issues", Action: "opened"})
	// A redelivery request makes GitHub deliver the event again.
	github.SetOnRedeliver(func(_ string, d fake.HookDeliveryRecord) {
		var i int
		fmt.Sscanf(d.GUID, "guid-%d", &i)
		if code, err := fake.Send(http.DefaultClient, endpoint, apptest.Secret, issue(i)); err != nil || code != http.StatusAccepted {
			t.Errorf("redelivery of %s = %d, %v", d.GUID, code, err)
		}
	})

	var out, errOut logtest.Buffer
	if err := run([]string{"redeliver", "--since", "24h", "--dry-run"}, &out, &errOut); err != nil {
		t.Fatalf("redeliver --dry-run: %v\n%s", err, out.String())
	}
	if got := github.RedeliveryRequests(hook); len(got) != 0 {
		t.Errorf("--dry-run requested %v, want nothing", got)
	}
	for _, g := range missed {
		if !strings.Contains(out.String(), g) {
			t.Errorf("--dry-run output lacks %s:\n%s", g, out.String())
		}
	}

	out = logtest.Buffer{}
	if err := run([]string{"redeliver", "--since", "24h"}, &out, &errOut); err != nil {
		t.Fatalf("redeliver: %v\n%s", err, out.String())
	}
	if got := len(github.RedeliveryRequests(hook)); got != len(missed) {
		t.Errorf("redelivery requests = %d, want %d (the six missed events)\n%s", got, len(missed), out.String())
	}
	for i := 1; i <= 9; i++ { // comments are spaced by the write pace: 0.75 s each
		waitStatus(t, db, issue(i).GUID, store.StatusDone)
	}
	// A second run finds nothing left to ask for.
	out = logtest.Buffer{}
	if err := run([]string{"redeliver", "--since", "24h"}, &out, &errOut); err != nil {
		t.Fatalf("second redeliver: %v\n%s", err, out.String())
	}
	if got := len(github.RedeliveryRequests(hook)); got != len(missed) {
		t.Errorf("redelivery requests after a second run = %d, want still %d", got, len(missed))
	}
	time.Sleep(500 * time.Millisecond) // anything that would post twice has had its chance
	for i := 1; i <= 12; i++ {
		want := 1
		if i >= 10 {
			want = 0 // never delivered to this hookwise, or left alone
		}
		if got := len(github.Comments("acme/app", i)); got != want {
			t.Errorf("issue #%d has %d comments, want %d", i, got, want)
		}
	}
	if slices.Contains(strings.Fields(out.String()), issue(11).GUID) {
		t.Errorf("the event that failed seconds ago was asked for again:\n%s", out.String())
	}
}
