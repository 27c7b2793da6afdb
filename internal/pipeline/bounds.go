package pipeline

import (
	"fmt"

	"github.com/hookwise/hookwise/internal/gh"
	"github.com/hookwise/hookwise/internal/prompt"
)

// failedJob reports whether a workflow job is one to explain: anything
// but a success or a skip (failure, timed_out, cancelled, startup_failure…).
func failedJob(j gh.Job) bool { return j.Conclusion != "success" && j.Conclusion != "skipped" }

// notShown is what a review names as not reviewed: the files the prompt
// left out by name, and a count of those it could not even name.
func notShown(d prompt.PullRequestData) []string {
	out := d.Omitted
	if d.MoreFiles > 0 {
		out = append(out, fmt.Sprintf("%d more changed files, not listed", d.MoreFiles))
	}
	return out
}
