package pipeline

import (
	"context"
	"fmt"

	"github.com/hookwise/hookwise/internal/store"
)

// planWorkflowRun plans the explanation of a failed workflow run, answered
// on the pull requests it ran for.
func planWorkflowRun(_ context.Context, _ *Pipeline, d store.Delivery, t *task) (*skip, error) {
	run := t.ev.WorkflowRun
	if run == nil {
		return skipf("no_handler", "%s has no workflow run", d.EventName()), nil
	}
	if run.Conclusion != "failure" {
		return skipf("not_failure", "workflow run concluded %q, not failure", run.Conclusion), nil
	}
	t.kind, t.number = &workflowKind, int(run.ID)
	t.subject = fmt.Sprintf("run %d", run.ID)
	t.seen = t.subject
	for _, pr := range run.PullRequests {
		t.targets = append(t.targets, pr.Number)
	}
	return nil, nil
}
