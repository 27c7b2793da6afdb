package main

import (
	"context"
	"database/sql"
	"github.com/hookwise/hookwise/internal/logtest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/app"
	"github.com/hookwise/hookwise/internal/store"
)

func TestDeliveriesAndReplayCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hookwise.db")
	t.Setenv("HOOKWISE_DATABASE_URL", db)
	t.Setenv("HOOKWISE_CONFIG", "")
	ctx := context.Background()
	st, err := app.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Tx(ctx, func(tx *sql.Tx) error {
		_, err := st.InsertDeliveries(ctx, tx, []store.Delivery{{HookID: "9", GUID: "guid-cli-1", Event: "issues", Action: "opened",
			Repo: "acme/app", Payload: []byte(`{"action":"opened"}`), ReceivedAt: time.Now()}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.FindDelivery(ctx, "guid-cli-1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Reserve(ctx, store.UsageCall{DeliveryID: d.ID, Repo: "acme/app", Owner: "acme", Model: "claude-sonnet-4-5", EstimateMicros: 40_000}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Settle(ctx, id, store.Settlement{Model: "claude-sonnet-4-5", Outcome: "ok", Input: 1200, Output: 300, Micros: 8100}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out, errOut logtest.Buffer
	if err := run([]string{"deliveries", "list"}, &out, &errOut); err != nil {
		t.Fatalf("deliveries list: %v", err)
	}
	if !strings.Contains(out.String(), "guid-cli-1") || !strings.Contains(out.String(), "issues.opened") {
		t.Errorf("deliveries list output lacks the delivery:\n%s", out.String())
	}
	out = logtest.Buffer{}
	if err := run([]string{"deliveries", "show", "guid-cli-1"}, &out, &errOut); err != nil {
		t.Fatalf("deliveries show: %v", err)
	}
	if !strings.Contains(out.String(), `"status": "queued"`) {
		t.Errorf("deliveries show output lacks the status:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `"model_calls"`) || !strings.Contains(out.String(), `"cost_usd": 0.0081`) {
		t.Errorf("deliveries show output lacks the model call and its cost:\n%s", out.String())
	}
	if err := run([]string{"deliveries", "show", "no-such"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("deliveries show no-such = %v, want a not found error", err)
	}
	out = logtest.Buffer{}
	if err := run([]string{"replay", "guid-cli-1"}, &out, &errOut); err != nil {
		t.Fatalf("replay: %v", err)
	}
	st, err = app.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var jobs int
	if err := st.DB.QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'process_delivery'`).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != 1 {
		t.Errorf("process_delivery jobs after replay = %d, want 1", jobs)
	}
	d, err = st.FindDelivery(ctx, "guid-cli-1")
	if err != nil || d.Reason != "replayed" {
		t.Errorf("delivery after replay = %q, %v; want reason replayed", d.Reason, err)
	}
}

func TestCheckConfigRedactsSecrets(t *testing.T) {
	t.Setenv("HOOKWISE_CONFIG", "")
	t.Setenv("GITHUB_WEBHOOK_SECRET", "s3cret-hook")
	t.Setenv("GITHUB_TOKEN", "ghp_supersecrettoken")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-secretkey")
	t.Setenv("HOOKWISE_ADMIN_TOKEN", "admin-secret")
	var out, errOut logtest.Buffer
	if err := run([]string{"check-config"}, &out, &errOut); err != nil {
		t.Fatalf("check-config: %v", err)
	}
	for _, secret := range []string{"s3cret-hook", "ghp_supersecrettoken", "sk-ant-secretkey", "admin-secret"} {
		if strings.Contains(out.String()+errOut.String(), secret) {
			t.Errorf("check-config output shows the secret %q", secret)
		}
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("check-config output has no [redacted] marker:\n%s", out.String())
	}
	t.Setenv("GITHUB_WRITES_PER_MINUTE", "abc")
	err := run([]string{"check-config"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "GITHUB_WRITES_PER_MINUTE") {
		t.Errorf("check-config with a bad value = %v, want an error naming GITHUB_WRITES_PER_MINUTE", err)
	}
}
