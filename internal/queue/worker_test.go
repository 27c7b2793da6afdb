package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

type waiting struct{ wait time.Duration }

func (w waiting) Error() string                     { return "waiting for GitHub's write allowance" }
func (waiting) Temporary() bool                     { return true }
func (w waiting) RetryAfterDuration() time.Duration { return w.wait }

type fixedProcessor struct {
	err    error
	gaveUp int
}

func (p *fixedProcessor) Process(context.Context, int64, string) error { return p.err }
func (p *fixedProcessor) GaveUp(context.Context, int64, error)         { p.gaveUp++ }

func jobAt(created time.Time, attempt int) *river.Job[ProcessArgs] {
	return &river.Job[ProcessArgs]{JobRow: &rivertype.JobRow{ID: 7, Attempt: attempt, MaxAttempts: 10, CreatedAt: created}}
}

// A job that waits, however old and however often it has waited, is
// snoozed: it never becomes a dead letter for waiting.
func TestWaitingNeverFails(t *testing.T) {
	now := time.Now()
	proc := &fixedProcessor{err: waiting{wait: 40 * time.Minute}}
	w := &worker{proc: proc, maxAge: 24 * time.Hour, policy: &retryPolicy{base: time.Second, max: time.Minute}, now: func() time.Time { return now }}
	for _, job := range []*river.Job[ProcessArgs]{jobAt(now.Add(-time.Minute), 1), jobAt(now.Add(-30*time.Hour), 10)} {
		err := w.Work(context.Background(), job)
		var snooze *river.JobSnoozeError
		if !errors.As(err, &snooze) || snooze.Duration != 40*time.Minute {
			t.Errorf("job created %s ago, attempt %d: Work = %v, want a 40m snooze", now.Sub(job.CreatedAt), job.Attempt, err)
		}
	}
	if proc.gaveUp != 0 {
		t.Errorf("GaveUp called %d times for a waiting job", proc.gaveUp)
	}
}

// A job interrupted because the service stops runs again on the next
// start without using an attempt; one that ran into the job timeout uses
// one.
func TestInterruptedIsNotFailed(t *testing.T) {
	now := time.Now()
	proc := &fixedProcessor{err: context.Canceled}
	w := &worker{proc: proc, maxAge: 24 * time.Hour, policy: &retryPolicy{base: time.Second, max: time.Minute}, now: func() time.Time { return now }}
	stopped, stop := context.WithCancel(context.Background())
	stop()
	err := w.Work(stopped, jobAt(now, 10))
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) || snooze.Duration != 0 {
		t.Errorf("interrupted on the last attempt: Work = %v, want an immediate snooze", err)
	}
	proc.err = context.DeadlineExceeded
	timedOut, cancel := context.WithDeadline(context.Background(), now.Add(-time.Second))
	defer cancel()
	err = w.Work(timedOut, jobAt(now, 3))
	if errors.As(err, &snooze) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timed out: Work = %v, want the timeout as a failed attempt", err)
	}
	if proc.gaveUp != 0 {
		t.Errorf("GaveUp called %d times", proc.gaveUp)
	}
}
