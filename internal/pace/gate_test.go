package pace_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/pace"
)

const ahead = 30 * time.Second

func claim(repo string, n, priority int) pace.Claim {
	return pace.Claim{Key: "token", Repo: repo, Job: fmt.Sprintf("%s-%d", repo, n), Priority: priority, Writes: 2}
}

// turn returns how many claims the WaitError says are ahead, or -1 when
// the claim was granted.
func turn(t *testing.T, rt *pace.Transport, c pace.Claim) (int, *pace.Grant) {
	t.Helper()
	g, err := rt.Admit(context.Background(), c, ahead)
	if err == nil {
		return -1, g
	}
	var wait *pace.WaitError
	if !errors.As(err, &wait) {
		t.Fatalf("Admit(%s) = %v, want a grant or a WaitError", c.Job, err)
	}
	var n int
	if _, err := fmt.Sscanf(wait.What, "its turn in the write window (%d claims ahead)", &n); err != nil {
		t.Fatalf("Admit(%s): %q does not say the turn", c.Job, wait.What)
	}
	return n, nil
}

// Claims are granted while the hour's allowance covers them and what was
// promised before; the next one waits for the hour to roll over, and a
// grant's writes use up its promise.
func TestGateGrantsWhatTheWindowAllows(t *testing.T) {
	t.Parallel()
	clock := newClock()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerHour: 10, SnoozeAfter: ahead})
	var grants []*pace.Grant
	for i := range 5 {
		g, err := rt.Admit(context.Background(), claim("acme/app", i, 4), ahead)
		if err != nil {
			t.Fatalf("claim %d of 5 (2 writes each, 10 an hour): %v", i, err)
		}
		grants = append(grants, g)
	}
	_, err := rt.Admit(context.Background(), claim("acme/app", 5, 4), ahead)
	var wait *pace.WaitError
	if !errors.As(err, &wait) || wait.RetryAfterDuration() < 59*time.Minute || wait.RetryAfterDuration() > time.Hour {
		t.Fatalf("sixth claim = %v, want a wait of about an hour", err)
	}
	if b := rt.Backlogs(); len(b) != 1 || b[0].Claims != 1 || b[0].Writes != 12 || b[0].DrainIn < time.Hour || b[0].DrainIn > time.Hour+time.Second {
		t.Errorf("Backlogs = %+v, want 1 claim, 12 writes, drained in over an hour", b)
	}

	// The first grant writes twice, the second gives its writes back.
	for i := range 2 {
		ctx := pace.WithKey(pace.WithGrant(context.Background(), grants[0]), "token")
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/repos/acme/app/issues/%d/comments", srv.URL, i), nil)
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	grants[0].Release()
	grants[1].Release()
	grants[1].Release() // twice is harmless
	if b := rt.Backlogs(); len(b) != 1 || b[0].Writes != 6+2 {
		t.Errorf("after 2 writes and a release, Backlogs = %+v, want 6 promised + 2 waiting", b)
	}
	// 2 writes started and 6 promised: one more claim of 2 fits the hour.
	if _, err := rt.Admit(context.Background(), claim("acme/app", 5, 4), ahead); err != nil {
		t.Errorf("claim after a release: %v, want it granted", err)
	}
}

// With the allowance spent, a claim of a more urgent kind goes ahead of
// every claim of a less urgent one, and repositories take turns.
func TestGateOrdersByPriorityThenRepository(t *testing.T) {
	t.Parallel()
	clock := newClock()
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerHour: 2, SnoozeAfter: ahead})
	if _, err := rt.Admit(context.Background(), claim("busy/repo", 0, 4), ahead); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 1000; i++ {
		clock.Advance(time.Millisecond)
		if n, _ := turn(t, rt, claim("busy/repo", i, 4)); n != i-1 {
			t.Fatalf("claim %d of the busy repository has %d ahead, want %d", i, n, i-1)
		}
	}
	clock.Advance(time.Millisecond)
	if n, _ := turn(t, rt, claim("quiet/repo", 1, 4)); n != 1 {
		t.Errorf("a quiet repository's first triage has %d ahead, want 1 (the busy one's oldest)", n)
	}
	if n, _ := turn(t, rt, claim("busy/repo", 2, 4)); n != 2 {
		t.Errorf("the busy repository's second claim has %d ahead, want 2 (its first, the quiet one's)", n)
	}
	if n, _ := turn(t, rt, claim("other/repo", 1, 1)); n != 0 {
		t.Errorf("a review request behind 1001 triages has %d ahead, want 0", n)
	}
	if n, _ := turn(t, rt, claim("quiet/repo", 1, 4)); n != 2 {
		t.Errorf("after the review request, the quiet repository's claim has %d ahead, want 2", n)
	}
}

// A claim that never comes back stops holding up the line.
func TestGateForgetsClaimsThatDoNotReturn(t *testing.T) {
	t.Parallel()
	clock := newClock()
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerMinute: 2, SnoozeAfter: ahead})
	first, err := rt.Admit(context.Background(), claim("acme/app", 0, 4), ahead)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := turn(t, rt, claim("acme/app", 1, 4)); n != 0 {
		t.Fatalf("second claim has %d ahead, want 0", n)
	}
	if n, _ := turn(t, rt, claim("acme/app", 2, 4)); n != 1 {
		t.Fatalf("third claim has %d ahead, want 1", n)
	}
	first.Release()
	clock.Advance(10 * time.Minute) // claim 1 was due long ago
	if n, g := turn(t, rt, claim("acme/app", 2, 4)); n != -1 {
		t.Errorf("with the first grant unused and claim 1 gone: %d ahead, want a grant", n)
	} else {
		g.Release()
	}
}

// In a fleet the writes the other instances made count: with the hour's
// allowance spent by them, this instance promises nothing.
func TestGateCountsTheFleetsWrites(t *testing.T) {
	t.Parallel()
	clock := newClock()
	shared := &sharedWindow{}
	for i := range 10 {
		shared.slots = append(shared.slots, clock.Now().Add(-time.Duration(50-i)*time.Minute))
	}
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerHour: 10, SnoozeAfter: ahead, Shared: shared})
	_, err := rt.Admit(context.Background(), claim("acme/app", 0, 4), ahead)
	var wait *pace.WaitError
	if !errors.As(err, &wait) || wait.RetryAfterDuration() != 10*time.Minute+30*time.Second {
		t.Fatalf("claim of 2 writes with the fleet's hour spent = %v, want a wait until its second-oldest write is an hour old, less the 30s ahead: 10m30s", err)
	}
	shared.slots = shared.slots[2:]
	if _, err := rt.Admit(context.Background(), claim("acme/app", 0, 4), ahead); err != nil {
		t.Errorf("claim with two writes left in the fleet's hour: %v, want it granted", err)
	}
}

// A claim withdrawn (its job ended without its turn) no longer holds up
// the one behind it.
func TestGateWithdraw(t *testing.T) {
	t.Parallel()
	clock := newClock()
	rt := newTransport(t, clock, pace.Options{Upstream: pace.GitHub, WritesPerHour: 2, SnoozeAfter: ahead})
	first, err := rt.Admit(context.Background(), claim("acme/app", 0, 4), ahead)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := turn(t, rt, claim("acme/app", 1, 4)); n != 0 {
		t.Fatalf("second claim: %d ahead, want 0", n)
	}
	if n, _ := turn(t, rt, claim("acme/app", 2, 4)); n != 1 {
		t.Fatalf("third claim: %d ahead, want 1", n)
	}
	first.Release()
	if n, _ := turn(t, rt, claim("acme/app", 2, 4)); n != 1 {
		t.Fatalf("third claim with the first grant given back: %d ahead, want 1", n)
	}
	rt.Withdraw("acme/app-1")
	if n, g := turn(t, rt, claim("acme/app", 2, 4)); n != -1 {
		t.Errorf("third claim after the second withdrew: %d ahead, want a grant", n)
	} else {
		g.Release()
	}
}
