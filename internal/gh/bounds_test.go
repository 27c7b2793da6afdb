package gh

import (
	"context"
	"fmt"
	"testing"

	"github.com/hookwise/hookwise/internal/fake"
)

// TestListingIsBounded: whatever a thread, repository, pull request or run
// holds, listing it costs a bounded number of requests, counted by the
// fake, which paginates as GitHub does (Link headers, at most 100 a page).
func TestListingIsBounded(t *testing.T) {
	t.Parallel()
	g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}, RateLimit: 1_000_000})
	c := newClient(t, Options{BaseURL: url, Token: testToken})
	ctx := context.Background()
	r := Repo{Owner: "o", Name: "r"}
	threads := map[int]int{1: 10_000, 2: 250, 3: 80, 4: 100, 5: 101}
	for number, n := range threads {
		for i := range n {
			g.AddComment(r.String(), number, "alice", fmt.Sprintf("c%d", i))
		}
	}
	var labels []string
	for i := range 5000 {
		labels = append(labels, fmt.Sprintf("label-%04d", i))
	}
	g.SetRepoLabels(r.String(), labels)
	var files []fake.PRFile
	for i := range 3000 {
		files = append(files, fake.PRFile{Filename: fmt.Sprintf("f%04d.go", i), Status: "modified", Patch: "@@"})
	}
	g.AddPullRequest(r.String(), 9, files)
	failing := func(every int) []fake.WorkflowJob {
		var jobs []fake.WorkflowJob
		for i := 1; i <= 3000; i++ {
			j := fake.WorkflowJob{Name: fmt.Sprintf("job %d", i), Conclusion: "success"}
			if i%every == 0 {
				j.Conclusion = "failure"
			}
			jobs = append(jobs, j)
		}
		return jobs
	}
	g.AddWorkflowJobs(r.String(), 1, failing(1))
	g.AddWorkflowJobs(r.String(), 2, failing(3000))
	failed := func(j Job) bool { return j.Conclusion == "failure" }

	requests := func(f func() error) int {
		t.Helper()
		before, _ := g.Stats()
		if err := f(); err != nil {
			t.Fatal(err)
		}
		after, _ := g.Stats()
		return after - before
	}
	for _, tt := range []struct {
		number, newest, wantRequests int
	}{
		{1, 100, 2}, {1, 150, 3}, {1, 20, 2}, {2, 100, 3}, {2, 300, 3}, {3, 100, 1}, {4, 100, 1}, {5, 100, 2},
	} {
		t.Run(fmt.Sprintf("comments %d newest %d", threads[tt.number], tt.newest), func(t *testing.T) {
			var cs []Comment
			var total int
			n := requests(func() (err error) { cs, total, err = c.ListComments(ctx, r, tt.number, tt.newest); return })
			want := min(tt.newest, threads[tt.number])
			if n != tt.wantRequests || total != threads[tt.number] || len(cs) != want {
				t.Fatalf("ListComments(%d comments, newest %d) = %d comments of %d in %d requests; want %d of %d in %d",
					threads[tt.number], tt.newest, len(cs), total, n, want, threads[tt.number], tt.wantRequests)
			}
			for i, cm := range cs {
				if wantBody := fmt.Sprintf("c%d", threads[tt.number]-want+i); cm.Body != wantBody {
					t.Fatalf("ListComments(…)[%d] = %q, want %q: the newest, oldest first", i, cm.Body, wantBody)
				}
			}
		})
	}
	t.Run("labels", func(t *testing.T) {
		var got []string
		n := requests(func() (err error) { got, err = c.RepoLabels(ctx, r, 100); return })
		if n != 1 || len(got) != 100 || got[99] != "label-0099" {
			t.Errorf("RepoLabels(5,000 labels, 100) = %d labels in %d requests, want the first 100 in 1", len(got), n)
		}
	})
	t.Run("files", func(t *testing.T) {
		var got []File
		var total int
		n := requests(func() (err error) { got, total, err = c.PullRequestFiles(ctx, r, 9, 200); return })
		if n != 3 || len(got) != 200 || total != 3000 || got[199].Name != "f0199.go" {
			t.Errorf("PullRequestFiles(3,000 files, 200) = %d of %d in %d requests, want the first 200 of 3,000 in 3", len(got), total, n)
		}
	})
	for _, tt := range []struct {
		run                            int64
		wantJobs, wantUnread, wantReqs int
	}{
		{1, 30, 2900, 1}, // every job failed: the first page has enough
		{2, 0, 2000, 10}, // the one failure is past ten pages
	} {
		t.Run(fmt.Sprintf("jobs of run %d", tt.run), func(t *testing.T) {
			var jobs []Job
			var unread int
			n := requests(func() (err error) { jobs, unread, err = c.WorkflowJobs(ctx, r, tt.run, failed, 30); return })
			if len(jobs) != tt.wantJobs || unread != tt.wantUnread || n != tt.wantReqs {
				t.Errorf("WorkflowJobs(3,000 jobs) = %d kept, %d unread, %d requests; want %d, %d, %d",
					len(jobs), unread, n, tt.wantJobs, tt.wantUnread, tt.wantReqs)
			}
		})
	}
}
