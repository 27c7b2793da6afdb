package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/pace"
)

// The alarm fires once when a backlog passes the threshold, stays quiet
// while it lasts, and says when it is over and how long it lasted.
func TestDrainAlarmFiresOncePerIncident(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	drain := 3 * time.Hour
	var sent []cost.Notice
	a := &drainAlarm{threshold: 2 * time.Hour, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now },
		since: map[string]time.Time{},
		backlogs: func() []pace.Backlog {
			return []pace.Backlog{{Key: "installation-7", Claims: 300, Writes: 600, DrainIn: drain}, {Key: "token", Writes: 2, DrainIn: time.Second}}
		},
		notify: func(_ context.Context, n cost.Notice) error { sent = append(sent, n); return nil }}
	for range 3 {
		a.check(context.Background())
		now = now.Add(drainCheckEvery)
	}
	if len(sent) != 1 || !strings.Contains(sent[0].Text, "installation-7 need 3h0m0s to drain (300 waiting, 600 writes") ||
		sent[0].Fields["state"] != "firing" {
		t.Fatalf("alerts after three checks over the threshold = %+v, want one firing alert for installation-7", sent)
	}
	drain = time.Hour
	a.check(context.Background())
	a.check(context.Background())
	if len(sent) != 2 || sent[1].Fields["state"] != "resolved" || !strings.Contains(sent[1].Text, "after 1m30s") {
		t.Fatalf("alerts after the backlog shrank = %+v, want a resolved alert saying it lasted 1m30s", sent)
	}
}
