package fake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/webhook"
)

// streamUser is a user object of a payload.
type streamUser struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// streamPayload is what the tests read of a stream's payloads.
type streamPayload struct {
	Action string `json:"action"`
	Issue  *struct {
		Number int        `json:"number"`
		Title  string     `json:"title"`
		Body   *string    `json:"body"`
		State  string     `json:"state"`
		User   streamUser `json:"user"`
		Labels []struct {
			Name string `json:"name"`
		} `json:"labels"`
	} `json:"issue"`
	PullRequest *struct {
		Number       int        `json:"number"`
		Title        string     `json:"title"`
		Draft        bool       `json:"draft"`
		User         streamUser `json:"user"`
		Additions    int        `json:"additions"`
		Deletions    int        `json:"deletions"`
		ChangedFiles int        `json:"changed_files"`
		Head         struct {
			SHA string `json:"sha"`
			Ref string `json:"ref"`
		} `json:"head"`
	} `json:"pull_request"`
	WorkflowRun *struct {
		ID           int64  `json:"id"`
		Name         string `json:"name"`
		Conclusion   string `json:"conclusion"`
		HeadSHA      string `json:"head_sha"`
		PullRequests []struct {
			Number int `json:"number"`
		} `json:"pull_requests"`
	} `json:"workflow_run"`
	Comment *struct {
		ID   int64      `json:"id"`
		Body string     `json:"body"`
		User streamUser `json:"user"`
	} `json:"comment"`
	Changes *struct {
		Body struct {
			From string `json:"from"`
		} `json:"body"`
	} `json:"changes"`
	Before     string     `json:"before"`
	After      string     `json:"after"`
	Sender     streamUser `json:"sender"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
}

func decodeItem(t *testing.T, it StreamItem) streamPayload {
	t.Helper()
	var p streamPayload
	if err := json.Unmarshal(it.Delivery.Payload, &p); err != nil {
		t.Fatalf("decode %s payload %s: %v", it.Delivery.Event, it.Delivery.GUID, err)
	}
	return p
}

// threadOf names the thread an item is about, in the terms of
// WantAnalysis: "issue#N", "review#N" or "workflow#ID"; "" for none.
func threadOf(t *testing.T, it StreamItem) string {
	t.Helper()
	p := decodeItem(t, it)
	switch {
	case p.Issue != nil:
		return fmt.Sprintf("issue#%d", p.Issue.Number)
	case p.PullRequest != nil:
		return fmt.Sprintf("review#%d", p.PullRequest.Number)
	case p.WorkflowRun != nil:
		return fmt.Sprintf("workflow#%d", p.WorkflowRun.ID)
	}
	return ""
}

// scaledCounts is the number of items per category at scale.
func scaledCounts(scale int) map[string]int {
	counts := map[string]int{
		CategoryIssue: 20, CategoryIssueEdit: 20, CategoryBot: 10, CategoryLowContent: 6,
		CategoryPROpen: 8, CategoryPRPush: 24, CategoryDraft: 3, CategoryWorkflowFailure: 5,
		CategoryWorkflowSuccess: 8, CategoryConversation: 15, CategoryMarkerComment: 3,
		CategoryNoise: 20, CategoryLateTrivialEdit: 4,
	}
	redeliverable := 0
	for c := range counts {
		counts[c] *= scale
	}
	for _, c := range []string{CategoryIssue, CategoryIssueEdit, CategoryPROpen, CategoryPRPush, CategoryWorkflowFailure} {
		redeliverable += counts[c]
	}
	counts[CategoryRedelivery] = (redeliverable*30 + 50) / 100
	return counts
}

func TestStreamDeterministic(t *testing.T) {
	t.Parallel()
	a := NewStream(StreamOptions{Seed: 7})
	b := NewStream(StreamOptions{Seed: 7})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("NewStream(seed 7) twice gave different streams")
	}
	c := NewStream(StreamOptions{Seed: 8})
	if reflect.DeepEqual(a.Items, c.Items) || reflect.DeepEqual(a.Want, c.Want) {
		t.Errorf("NewStream(seed 7) and NewStream(seed 8) give the same items or wants, want different")
	}
}

func TestStreamCounts(t *testing.T) {
	t.Parallel()
	for _, scale := range []int{0, 1, 2, 3} {
		t.Run(fmt.Sprintf("scale %d", scale), func(t *testing.T) {
			t.Parallel()
			s := NewStream(StreamOptions{Seed: 1, Scale: scale})
			want := scaledCounts(max(scale, 1))
			got := map[string]int{}
			legacy := 0
			for _, it := range s.Items {
				got[it.Category]++
				if it.Legacy {
					legacy++
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("items per category = %v, want %v", got, want)
			}
			total := 0
			for _, n := range want {
				total += n
			}
			if len(s.Items) != total {
				t.Errorf("len(Items) = %d, want %d", len(s.Items), total)
			}
			// Everything but the noise is an event the old service handled.
			if wantLegacy := total - want[CategoryNoise]; legacy != wantLegacy {
				t.Errorf("Legacy items = %d, want %d", legacy, wantLegacy)
			}
			kinds := map[string]int{}
			for _, w := range s.Want {
				kinds[w.Kind]++
			}
			wantKinds := map[string]int{
				"issue": want[CategoryIssue], "review": want[CategoryPROpen], "workflow": want[CategoryWorkflowFailure],
			}
			if !reflect.DeepEqual(kinds, wantKinds) {
				t.Errorf("Want per kind = %v, want %v", kinds, wantKinds)
			}
		})
	}
}

func TestStreamShape(t *testing.T) {
	t.Parallel()
	guidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	opts := StreamOptions{Repo: "octo/widgets", Seed: 3, Spacing: 10 * time.Millisecond, Burst: 30 * time.Millisecond, Late: time.Second}
	s := NewStream(opts)
	if !slices.IsSortedFunc(s.Items, func(a, b StreamItem) int { return int(a.At - b.At) }) {
		t.Errorf("Items are not sorted by At")
	}
	guids := map[string]bool{}
	var mainEnd time.Duration
	for _, it := range s.Items {
		d := it.Delivery
		if d.HookID != "1" {
			t.Errorf("%s HookID = %q, want 1", d.GUID, d.HookID)
		}
		if !guidRE.MatchString(d.GUID) {
			t.Errorf("GUID = %q, want a UUID", d.GUID)
		}
		if p := decodeItem(t, it); p.Repository.FullName != opts.Repo {
			t.Errorf("%s repository = %q, want %q", d.GUID, p.Repository.FullName, opts.Repo)
		}
		if it.Category != CategoryRedelivery {
			if guids[d.GUID] {
				t.Errorf("GUID %s used twice outside redeliveries", d.GUID)
			}
			guids[d.GUID] = true
		}
		if it.Category != CategoryRedelivery && it.Category != CategoryLateTrivialEdit {
			mainEnd = max(mainEnd, it.At)
		}
	}
	// Noise is a mix of every kind GitHub sends that hookwise ignores.
	noise := map[string]int{}
	for _, it := range s.Items {
		if it.Category == CategoryNoise {
			p := decodeItem(t, it)
			noise[strings.TrimSuffix(it.Delivery.Event+"."+p.Action, ".")]++
		}
	}
	wantNoise := map[string]int{"issues.labeled": 4, "issues.assigned": 4, "star.created": 4, "push": 4, "issues.closed": 4}
	if !reflect.DeepEqual(noise, wantNoise) {
		t.Errorf("noise = %v, want %v", noise, wantNoise)
	}
	for _, w := range s.Want {
		if w.Repo != opts.Repo {
			t.Errorf("Want %s#%d Repo = %q, want %q", w.Kind, w.Number, w.Repo, opts.Repo)
		}
	}
	// The late edits come Late after everything else, Spacing apart.
	var late []time.Duration
	for _, it := range s.Items {
		if it.Category == CategoryLateTrivialEdit {
			late = append(late, it.At)
		}
	}
	for i, at := range late {
		if want := mainEnd + opts.Late + time.Duration(i)*opts.Spacing; at != want {
			t.Errorf("late edit %d At = %v, want %v", i, at, want)
		}
	}
}

func TestStreamWant(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 99} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			s := NewStream(StreamOptions{Seed: seed})
			// The threads that deserve an analysis are exactly the real
			// issues, the people's pull requests and the failed runs.
			deserving := map[string]bool{}
			for _, it := range s.Items {
				switch it.Category {
				case CategoryIssue, CategoryPROpen, CategoryWorkflowFailure:
					deserving[threadOf(t, it)] = true
				}
			}
			seen := map[string]bool{}
			for _, w := range s.Want {
				key := fmt.Sprintf("%s#%d", w.Kind, w.Number)
				if seen[key] {
					t.Errorf("Want %s listed twice", key)
				}
				seen[key] = true
				if !deserving[key] {
					t.Errorf("Want %s is not a real issue, pull request or failed run", key)
				}
				if w.Latest == "" {
					t.Errorf("Want %s Latest is empty", key)
				}
				// The thread's latest state is in its last delivery; a
				// redelivery may carry an older one and comes last at times.
				var last StreamItem
				var history []byte
				for _, it := range s.Items {
					if it.Category != CategoryRedelivery && threadOf(t, it) == key {
						last = it
						history = append(history, it.Delivery.Payload...)
					}
				}
				if !strings.Contains(string(last.Delivery.Payload), w.Latest) {
					t.Errorf("Want %s: last delivery %s does not contain Latest %q", key, last.Delivery.GUID, w.Latest)
				}
				// The state the last delivery shows: changes.body.from and
				// before legitimately name the previous state.
				p := decodeItem(t, last)
				var state string
				switch w.Kind {
				case "issue":
					state = *p.Issue.Body
				case "review":
					state = p.PullRequest.Head.SHA
				case "workflow":
					state = p.WorkflowRun.Name
				}
				if !strings.Contains(state, w.Latest) {
					t.Errorf("Want %s: last state %q does not contain Latest %q", key, state, w.Latest)
				}
				for _, old := range w.Stale {
					if old == "" || strings.Contains(state, old) {
						t.Errorf("Want %s: last state contains Stale %q", key, old)
					}
					// Stale texts are ones the thread really went through.
					if !strings.Contains(string(history), old) {
						t.Errorf("Want %s: Stale %q never appears in its deliveries", key, old)
					}
				}
			}
			for key := range deserving {
				if !seen[key] {
					t.Errorf("thread %s deserves an analysis but has no Want", key)
				}
			}
		})
	}
}

func TestStreamIssues(t *testing.T) {
	t.Parallel()
	opts := StreamOptions{Seed: 5}
	s := NewStream(opts)
	tokenRE := regexp.MustCompile(`ref-issue-\d+-v\d+`)
	body := map[int]string{}           // number → current body
	opened := map[int]time.Duration{}  // number → when opened
	edits := map[int][]time.Duration{} // number → when edited
	for _, it := range s.Items {
		if it.Category == CategoryRedelivery {
			continue
		}
		p := decodeItem(t, it)
		switch it.Category {
		case CategoryIssue:
			b := *p.Issue.Body
			if n := len(b); n < 300 || n > 1500 {
				t.Errorf("#%d body has %d characters, want 300–1500", p.Issue.Number, n)
			}
			if got, want := tokenRE.FindAllString(b, -1), []string{fmt.Sprintf("ref-issue-%d-v1", p.Issue.Number)}; !slices.Equal(got, want) {
				t.Errorf("#%d body tokens = %v, want %v", p.Issue.Number, got, want)
			}
			if p.Issue.Title == "" || p.Sender.Type != "User" || p.Action != "opened" {
				t.Errorf("#%d: title %q, sender type %q, action %q; want a title, a User, opened", p.Issue.Number, p.Issue.Title, p.Sender.Type, p.Action)
			}
			body[p.Issue.Number], opened[p.Issue.Number] = b, it.At
		case CategoryIssueEdit, CategoryLateTrivialEdit:
			n := p.Issue.Number
			if p.Action != "edited" || p.Changes == nil {
				t.Fatalf("#%d %s: action %q, changes %v; want edited with changes", n, it.Category, p.Action, p.Changes)
			}
			if p.Changes.Body.From != body[n] {
				t.Errorf("#%d %s: changes.body.from is not the previous body", n, it.Category)
			}
			now := *p.Issue.Body
			before, after := tokenRE.FindAllString(body[n], -1), tokenRE.FindAllString(now, -1)
			if it.Category == CategoryIssueEdit {
				edits[n] = append(edits[n], it.At)
				want := fmt.Sprintf("ref-issue-%d-v%d", n, len(edits[n])+1)
				if !slices.Equal(after, []string{want}) {
					t.Errorf("#%d edit %d tokens = %v, want [%s]", n, len(edits[n]), after, want)
				}
				if grown := len(now) - len(body[n]); grown < 40 {
					t.Errorf("#%d edit %d grew the body by %d characters, want a sentence or two", n, len(edits[n]), grown)
				}
			} else {
				if len(edits[n]) > 0 {
					t.Errorf("#%d has a late trivial edit and early edits, want one or the other", n)
				}
				if !slices.Equal(before, after) {
					t.Errorf("#%d late edit changed tokens from %v to %v", n, before, after)
				}
				if d := levenshtein(body[n], now); d == 0 || d >= 10 {
					t.Errorf("#%d late edit changed %d characters, want 1–9", n, d)
				}
			}
			body[n] = now
		case CategoryLowContent:
			if b := *p.Issue.Body; b != "" && b != "." {
				t.Errorf("low-content #%d body = %q, want empty or \".\"", p.Issue.Number, b)
			}
		case CategoryBot:
			want := "dependabot[bot]"
			if p.PullRequest != nil {
				want = "renovate[bot]"
			}
			if p.Sender.Login != want || p.Sender.Type != "Bot" {
				t.Errorf("bot item sender = %+v, want %s of type Bot", p.Sender, want)
			}
		}
	}
	// Edits come in a burst right after opening.
	for n, at := range edits {
		want := []time.Duration{opened[n] + 200*time.Millisecond, opened[n] + 400*time.Millisecond}
		if !slices.Equal(at, want) {
			t.Errorf("#%d edits at %v, want %v", n, at, want)
		}
	}
}

func TestStreamPullsRunsAndComments(t *testing.T) {
	t.Parallel()
	s := NewStream(StreamOptions{Seed: 11, Repo: "acme/app"})
	heads := map[int][]string{} // pull request → its head SHAs
	issues := map[int]bool{}
	shaRE := regexp.MustCompile(`^[0-9a-f]{40}$`)
	for _, it := range s.Items {
		if it.Category == CategoryRedelivery {
			continue
		}
		p := decodeItem(t, it)
		switch it.Category {
		case CategoryIssue:
			issues[p.Issue.Number] = true
		case CategoryPROpen, CategoryPRPush, CategoryDraft:
			pr := p.PullRequest
			if !shaRE.MatchString(pr.Head.SHA) || slices.Contains(heads[pr.Number], pr.Head.SHA) {
				t.Errorf("#%d %s head %q, want a new 40-hex SHA", pr.Number, p.Action, pr.Head.SHA)
			}
			if it.Category == CategoryPRPush {
				prev := heads[pr.Number]
				if p.Action != "synchronize" || len(prev) == 0 || p.Before != prev[len(prev)-1] || p.After != pr.Head.SHA {
					t.Errorf("#%d push: action %q before %q after %q, want synchronize from the previous head", pr.Number, p.Action, p.Before, p.After)
				}
			}
			if pr.Draft != (it.Category == CategoryDraft) {
				t.Errorf("#%d draft = %v in a %s item", pr.Number, pr.Draft, it.Category)
			}
			heads[pr.Number] = append(heads[pr.Number], pr.Head.SHA)
		case CategoryWorkflowFailure, CategoryWorkflowSuccess:
			run := p.WorkflowRun
			want := "failure"
			if it.Category == CategoryWorkflowSuccess {
				want = "success"
			}
			if p.Action != "completed" || run.Conclusion != want {
				t.Errorf("run %d: %s %s, want completed %s", run.ID, p.Action, run.Conclusion, want)
			}
			// Runs test the final head of their pull request.
			if len(run.PullRequests) != 1 {
				t.Fatalf("run %d has %d pull requests, want 1", run.ID, len(run.PullRequests))
			}
			h := heads[run.PullRequests[0].Number]
			if len(h) == 0 || run.HeadSHA != h[len(h)-1] {
				t.Errorf("run %d head %s, want the final head of #%d", run.ID, run.HeadSHA, run.PullRequests[0].Number)
			}
		case CategoryConversation:
			if !issues[p.Issue.Number] || p.Comment.User.Type != "User" || p.Comment.User.Login == "hookwise-bot" || p.Comment.Body == "" {
				t.Errorf("conversation comment %+v on #%d, want a person's reply on an opened issue", p.Comment, p.Issue.Number)
			}
		case CategoryMarkerComment:
			mark := fmt.Sprintf("<!-- hookwise:issue-analysis acme/app#%d -->", p.Issue.Number)
			if p.Comment.User != (streamUser{"hookwise-bot", "Bot"}) || p.Sender.Type != "Bot" || !strings.Contains(p.Comment.Body, mark) {
				t.Errorf("marker comment by %+v = %q, want hookwise-bot (Bot) with %q", p.Comment.User, p.Comment.Body, mark)
			}
		}
	}
	for n, h := range heads {
		if len(h) != 4 && len(h) != 1 {
			t.Errorf("#%d has %d heads, want 4 (opened and 3 pushes) or 1 (draft)", n, len(h))
		}
	}
}

func TestStreamRedeliveries(t *testing.T) {
	t.Parallel()
	s := NewStream(StreamOptions{Seed: 4})
	for i, it := range s.Items {
		if it.Category != CategoryRedelivery {
			continue
		}
		j := slices.IndexFunc(s.Items[:i], func(o StreamItem) bool {
			return o.Category != CategoryRedelivery && o.Delivery.GUID == it.Delivery.GUID
		})
		if j < 0 {
			t.Errorf("redelivery %s has no earlier item with its GUID", it.Delivery.GUID)
			continue
		}
		orig := s.Items[j]
		if !reflect.DeepEqual(orig.Delivery, it.Delivery) {
			t.Errorf("redelivery %s differs from the original delivery", it.Delivery.GUID)
		}
		if d := it.At - orig.At; d < 0 || d > 2*time.Second {
			t.Errorf("redelivery %s comes %v after the original, want 0–2s", it.Delivery.GUID, d)
		}
		if !slices.Contains(redeliverable, orig.Category) {
			t.Errorf("redelivered a %s item, want only %v", orig.Category, redeliverable)
		}
		if !it.Legacy {
			t.Errorf("redelivery %s Legacy = false, want true", it.Delivery.GUID)
		}
	}
}

func TestStreamLegacy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		event, action string
		want          bool
	}{
		{"issues", "opened", true},
		{"issues", "edited", true},
		{"issues", "reopened", true},
		{"issues", "labeled", false},
		{"issues", "closed", false},
		{"issue_comment", "created", true},
		{"issue_comment", "deleted", false},
		{"pull_request", "synchronize", true},
		{"pull_request", "ready_for_review", true},
		{"pull_request", "review_requested", true},
		{"pull_request", "closed", false},
		{"workflow_run", "completed", true},
		{"workflow_run", "requested", false},
		{"star", "created", false},
		{"push", "", false},
	}
	for _, tt := range tests {
		if got := legacyCalls(tt.event, tt.action); got != tt.want {
			t.Errorf("legacyCalls(%q, %q) = %v, want %v", tt.event, tt.action, got, tt.want)
		}
	}
	s := NewStream(StreamOptions{Seed: 2})
	for _, it := range s.Items {
		p := decodeItem(t, it)
		if want := legacyCalls(it.Delivery.Event, p.Action); it.Legacy != want {
			t.Errorf("%s %s.%s Legacy = %v, want %v", it.Category, it.Delivery.Event, p.Action, it.Legacy, want)
		}
		if it.Category == CategoryNoise && it.Legacy {
			t.Errorf("noise %s.%s Legacy = true, want false", it.Delivery.Event, p.Action)
		}
	}
}

// ghGet GETs path from the fake GitHub at base into v.
func ghGet(t *testing.T, base, path string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode: %v", path, err)
	}
}

func TestStreamSeed(t *testing.T) {
	t.Parallel()
	s := NewStream(StreamOptions{Seed: 6})
	// Strict: whatever the stream refers to must have been seeded.
	g := NewGitHub(GitHubOptions{Tokens: []string{"tok"}, Strict: true})
	s.Seed(g)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)

	var labels []struct {
		Name string `json:"name"`
	}
	ghGet(t, srv.URL, "/repos/acme/app/labels?per_page=100", &labels)
	if len(labels) < 5 {
		t.Errorf("repository has %d labels, want the stream's label set", len(labels))
	}
	for _, it := range s.Items {
		if it.Category == CategoryRedelivery {
			continue
		}
		p := decodeItem(t, it)
		switch {
		case p.PullRequest != nil:
			pr := p.PullRequest
			var files []struct {
				Filename  string `json:"filename"`
				Status    string `json:"status"`
				Additions int    `json:"additions"`
				Deletions int    `json:"deletions"`
				Patch     string `json:"patch"`
			}
			ghGet(t, srv.URL, fmt.Sprintf("/repos/acme/app/pulls/%d/files", pr.Number), &files)
			if len(files) < 2 || len(files) > 5 || len(files) != pr.ChangedFiles {
				t.Errorf("#%d has %d files (payload says %d), want 2–5", pr.Number, len(files), pr.ChangedFiles)
			}
			adds, dels := 0, 0
			for _, f := range files {
				adds += f.Additions
				dels += f.Deletions
				if len(f.Patch) < 100 || !strings.HasPrefix(f.Patch, "@@ -") || f.Additions+f.Deletions == 0 {
					t.Errorf("#%d %s: patch of %d characters with +%d -%d, want a real unified diff", pr.Number, f.Filename, len(f.Patch), f.Additions, f.Deletions)
				}
			}
			if adds != pr.Additions || dels != pr.Deletions {
				t.Errorf("#%d files +%d -%d, payload says +%d -%d", pr.Number, adds, dels, pr.Additions, pr.Deletions)
			}
		case p.Issue != nil:
			var is struct {
				Number int    `json:"number"`
				Title  string `json:"title"`
			}
			ghGet(t, srv.URL, fmt.Sprintf("/repos/acme/app/issues/%d", p.Issue.Number), &is)
			if is.Title != p.Issue.Title {
				t.Errorf("#%d title on GitHub = %q, want %q", p.Issue.Number, is.Title, p.Issue.Title)
			}
		case p.WorkflowRun != nil:
			var jobs struct {
				Jobs []struct {
					Conclusion string `json:"conclusion"`
					Steps      []struct {
						Conclusion string `json:"conclusion"`
					} `json:"steps"`
				} `json:"jobs"`
			}
			ghGet(t, srv.URL, fmt.Sprintf("/repos/acme/app/actions/runs/%d/jobs", p.WorkflowRun.ID), &jobs)
			failedJobs, failedSteps := 0, 0
			for _, j := range jobs.Jobs {
				if j.Conclusion == "failure" {
					failedJobs++
					for _, st := range j.Steps {
						if st.Conclusion == "failure" {
							failedSteps++
						}
					}
				}
			}
			want := 0
			if p.WorkflowRun.Conclusion == "failure" {
				want = 1
			}
			if len(jobs.Jobs) == 0 || failedJobs != want || failedSteps != want {
				t.Errorf("run %d (%s): %d jobs, %d failed with %d failed steps, want %d and %d",
					p.WorkflowRun.ID, p.WorkflowRun.Conclusion, len(jobs.Jobs), failedJobs, failedSteps, want, want)
			}
		}
	}
}

// receiver is a webhook endpoint that checks signatures and records what
// arrives.
type receiver struct {
	secret   []byte
	mu       sync.Mutex
	guids    []string
	bad      int
	inFlight atomic.Int32
	most     atomic.Int32
	drop     string // a GUID whose connection is cut instead of answered
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := rc.inFlight.Add(1)
	defer rc.inFlight.Add(-1)
	for {
		m := rc.most.Load()
		if n <= m || rc.most.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	guid := r.Header.Get("X-GitHub-Delivery")
	if guid == rc.drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !webhook.Verify([][]byte{rc.secret}, body, r.Header.Get("X-Hub-Signature-256")) ||
		r.Header.Get("X-GitHub-Hook-ID") != "1" || r.Header.Get("X-GitHub-Event") == "" {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.guids = append(rc.guids, guid)
	w.WriteHeader(http.StatusAccepted)
}

func fastStream(seed uint64) Stream {
	return NewStream(StreamOptions{Seed: seed, Spacing: time.Millisecond, Burst: 2 * time.Millisecond, Late: 20 * time.Millisecond})
}

func TestStreamSend(t *testing.T) {
	t.Parallel()
	s := fastStream(1)
	rc := &receiver{secret: []byte("s3cret")}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)

	start := time.Now()
	statuses, errs := s.Send(context.Background(), srv.Client(), srv.URL, "s3cret", 4)
	took := time.Since(start)
	if len(statuses) != len(s.Items) || len(errs) != len(s.Items) {
		t.Fatalf("Send returned %d statuses and %d errors for %d items", len(statuses), len(errs), len(s.Items))
	}
	for i := range s.Items {
		if statuses[i] != http.StatusAccepted || errs[i] != nil {
			t.Errorf("item %d (%s): status %d, err %v; want 202", i, s.Items[i].Delivery.GUID, statuses[i], errs[i])
		}
	}
	var want []string
	for _, it := range s.Items {
		want = append(want, it.Delivery.GUID)
	}
	slices.Sort(want)
	rc.mu.Lock()
	got := slices.Sorted(slices.Values(rc.guids))
	bad := rc.bad
	rc.mu.Unlock()
	if !slices.Equal(got, want) || bad != 0 {
		t.Errorf("received %d deliveries (%d badly signed), want each of the %d items once", len(got), bad, len(want))
	}
	if last := s.Items[len(s.Items)-1].At; took < last {
		t.Errorf("Send took %v, want at least the last item's At %v", took, last)
	}
	if m := rc.most.Load(); m > 4 {
		t.Errorf("%d requests in flight at once, want at most 4", m)
	}
}

func TestStreamSendKeepsGoing(t *testing.T) {
	t.Parallel()
	s := fastStream(2)
	// Cut the connection of one delivery that is not redelivered.
	count := map[string]int{}
	for _, it := range s.Items {
		count[it.Delivery.GUID]++
	}
	drop := slices.IndexFunc(s.Items, func(it StreamItem) bool { return count[it.Delivery.GUID] == 1 })
	rc := &receiver{secret: []byte("k"), drop: s.Items[drop].Delivery.GUID}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)

	statuses, errs := s.Send(context.Background(), srv.Client(), srv.URL, "k", 8)
	for i := range s.Items {
		switch {
		case i == drop:
			if statuses[i] != 0 || errs[i] == nil {
				t.Errorf("dropped item %d: status %d, err %v; want 0 and an error", i, statuses[i], errs[i])
			}
		case statuses[i] != http.StatusAccepted || errs[i] != nil:
			t.Errorf("item %d: status %d, err %v; want 202", i, statuses[i], errs[i])
		}
	}
}

func TestStreamSendCancel(t *testing.T) {
	t.Parallel()
	// With the default Late of 5s, the late edits are still waiting when
	// the context ends.
	s := NewStream(StreamOptions{Seed: 3, Spacing: time.Millisecond, Burst: 2 * time.Millisecond})
	rc := &receiver{secret: []byte("k")}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	start := time.Now()
	statuses, errs := s.Send(ctx, srv.Client(), srv.URL, "k", 4)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Send took %v after its context ended, want it to stop", took)
	}
	for i, it := range s.Items {
		if it.Category == CategoryLateTrivialEdit && (statuses[i] != 0 || !errors.Is(errs[i], context.DeadlineExceeded)) {
			t.Errorf("late item %d: status %d, err %v; want 0 and the context's error", i, statuses[i], errs[i])
		}
		if it.At < 500*time.Millisecond && statuses[i] != http.StatusAccepted {
			t.Errorf("early item %d: status %d, err %v; want 202", i, statuses[i], errs[i])
		}
	}
}

func TestPayloadIssueComment(t *testing.T) {
	t.Parallel()
	is := IssueSnapshot{Number: 7, Title: "Crash", Body: "It crashes.", Author: "alice", Labels: []string{"bug"}, Comments: 2}
	tests := []struct {
		name     string
		c        IssueComment
		wantType string
	}{
		{"person", IssueComment{ID: 99, Body: "Same here.", User: "bob"}, "User"},
		{"app bot", IssueComment{ID: 100, Body: "Thanks!", User: "hookwise[bot]"}, "Bot"},
		{"machine user", IssueComment{ID: 101, Body: "<!-- hookwise:x -->", User: "hookwise-bot", Bot: true}, "Bot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p streamPayload
			if err := json.Unmarshal(IssueCommentEvent("created", "acme/app", is, tt.c), &p); err != nil {
				t.Fatal(err)
			}
			if p.Action != "created" || p.Issue == nil || p.Issue.Number != 7 || *p.Issue.Body != "It crashes." ||
				p.Issue.User.Login != "alice" || p.Issue.State != "open" || len(p.Issue.Labels) != 1 || p.Issue.Labels[0].Name != "bug" {
				t.Errorf("IssueCommentEvent issue = %+v, want #7 by alice, open, labelled bug", p.Issue)
			}
			if p.Comment == nil || p.Comment.ID != tt.c.ID || p.Comment.Body != tt.c.Body || p.Comment.User != (streamUser{tt.c.User, tt.wantType}) {
				t.Errorf("IssueCommentEvent comment = %+v, want %+v by a %s", p.Comment, tt.c, tt.wantType)
			}
			if p.Sender != (streamUser{tt.c.User, tt.wantType}) || p.Repository.FullName != "acme/app" {
				t.Errorf("IssueCommentEvent sender %+v repository %q, want the commenter and acme/app", p.Sender, p.Repository.FullName)
			}
		})
	}
}

func TestPayloadPush(t *testing.T) {
	t.Parallel()
	before, mid, after := strings.Repeat("a", 40), strings.Repeat("b", 40), strings.Repeat("c", 40)
	raw := PushEvent("acme/app", "refs/heads/main", before, after, "mara", []PushCommit{
		{ID: mid, Message: "Fix typo", Author: "mara"},
		{ID: after, Message: "Bump version", Author: "ravi"},
	})
	var p struct {
		Ref     string `json:"ref"`
		Before  string `json:"before"`
		After   string `json:"after"`
		Action  *string
		Commits []struct {
			ID      string `json:"id"`
			Message string `json:"message"`
			Author  struct {
				Username string `json:"username"`
			} `json:"author"`
		} `json:"commits"`
		HeadCommit struct {
			ID string `json:"id"`
		} `json:"head_commit"`
		Pusher struct {
			Name string `json:"name"`
		} `json:"pusher"`
		Sender     streamUser `json:"sender"`
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.Ref != "refs/heads/main" || p.Before != before || p.After != after || p.Action != nil {
		t.Errorf("PushEvent ref %q before %q after %q action %v, want main, the given SHAs and no action", p.Ref, p.Before, p.After, p.Action)
	}
	if len(p.Commits) != 2 || p.Commits[0].ID != mid || p.Commits[1].Message != "Bump version" || p.Commits[1].Author.Username != "ravi" {
		t.Errorf("PushEvent commits = %+v, want the two given", p.Commits)
	}
	if p.HeadCommit.ID != after || p.Pusher.Name != "mara" || p.Sender.Login != "mara" || p.Repository.FullName != "acme/app" {
		t.Errorf("PushEvent head %q pusher %q sender %q repo %q, want %s, mara, mara, acme/app", p.HeadCommit.ID, p.Pusher.Name, p.Sender.Login, p.Repository.FullName, after)
	}
}

// levenshtein is the edit distance between a and b in bytes.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
