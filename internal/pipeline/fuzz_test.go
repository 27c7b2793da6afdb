package pipeline_test

import (
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
)

// FuzzProcess feeds arbitrary payloads, under each event name hookwise
// handles, through the whole pipeline against the fakes: whatever a
// payload holds, processing ends in a status or an error, never a panic,
// and a comment posted carries exactly one marker.
func FuzzProcess(f *testing.F) {
	events := []string{"issues", "pull_request", "workflow_run", "issue_comment"}
	f.Add(uint8(0), fake.IssueEvent("opened", repo, 1, "Panic on start", "It panics on an empty config file.", "alice"))
	f.Add(uint8(1), fake.PullRequestEvent("opened", repo, 2, "Retries", "Adds retries to the client.", headSHA, "alice", "", false))
	f.Add(uint8(1), fake.PullRequestEvent("review_requested", repo, 3, "Retries", "Adds retries.", headSHA, "alice", "bob", false))
	f.Add(uint8(2), fake.WorkflowRunEvent(repo, 99, "CI <!-- hookwise:x -->", "failure", headSHA, 2))
	f.Add(uint8(0), []byte(`{"action":"opened","repository":{"full_name":"acme/app","name":"app","owner":{"login":"acme"}},"issue":{"number":-1,"title":"@x ![a](b)","body":null,"user":{"login":""}}}`))
	f.Add(uint8(3), []byte(`{"action":"created","issue":{"number":1e99},"repository":{"full_name":"acme/app"}}`))
	f.Add(uint8(0), []byte(`[]`))
	h := newHarness(f, config.Default(), nil)
	h.github.AddPullRequest(repo, 2, []fake.PRFile{{Filename: "a.go", Status: "modified", Patch: "@@ -1 +1 @@\n-a\n+b"}})
	f.Fuzz(func(t *testing.T, event uint8, payload []byte) {
		id := h.deliverRaw(t, events[int(event)%len(events)], payload)
		_ = h.p.Process(t.Context(), id, "fuzz")
		for n := range 4 {
			for _, c := range h.github.Comments(repo, n) {
				if k := strings.Count(c.Body, "<!-- hookwise:"); c.User == "hookwise-bot" && k != 1 {
					t.Fatalf("comment on #%d carries %d markers:\n%s", n, k, c.Body)
				}
			}
		}
	})
}
