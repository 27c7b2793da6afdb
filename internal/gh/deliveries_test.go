package gh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/fake"
)

func TestHookStringParse(t *testing.T) {
	t.Parallel()
	good := []struct {
		text string
		hook Hook
	}{
		{"repo:octo/hello#12", Hook{Kind: "repo", Owner: "octo", Repo: "hello", ID: 12}},
		{"repo:octo-org/hello.go#99999999999", Hook{Kind: "repo", Owner: "octo-org", Repo: "hello.go", ID: 99999999999}},
		{"org:octo#7", Hook{Kind: "org", Owner: "octo", ID: 7}},
		{"app", Hook{Kind: "app"}},
	}
	for _, tc := range good {
		t.Run(tc.text, func(t *testing.T) {
			got, err := ParseHook(tc.text)
			if err != nil || got != tc.hook {
				t.Errorf("ParseHook(%q) = %+v, %v; want %+v", tc.text, got, err, tc.hook)
			}
			if s := tc.hook.String(); s != tc.text {
				t.Errorf("%+v.String() = %q, want %q", tc.hook, s, tc.text)
			}
		})
	}
	for _, bad := range []string{
		"", "repo", "app:", "apps", "repo:octo/hello", "repo:octo#12", "repo:/hello#12", "repo:octo/#12",
		"repo:octo/hello/x#12", "repo:octo/hello#0", "repo:octo/hello#-3", "repo:octo/hello#x",
		"org:#7", "org:octo/hello#7", "user:octo#7", "org:octo#7#8",
	} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := ParseHook(bad)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
				t.Errorf("ParseHook(%q) error = %v, want one naming the value", bad, err)
			}
		})
	}
}

func TestHookDeliveriesPagesUntilSince(t *testing.T) {
	t.Parallel()
	g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}})
	c := newClient(t, Options{BaseURL: url, Token: testToken})
	ctx := context.Background()

	// 320 attempts a minute apart (4 pages of 100); since keeps the newest 230.
	now := time.Now().Truncate(time.Second)
	const hook = "repo:octo/hello#12"
	ids := make(map[string]int64)
	for i := range 320 {
		guid := fmt.Sprintf("guid-%03d", i)
		code := 200
		if i%10 == 0 {
			code = 502
		}
		ids[guid] = g.AddHookDelivery(hook, fake.HookDeliveryRecord{
			GUID: guid, DeliveredAt: now.Add(-time.Duration(i) * time.Minute), StatusCode: code,
			Event: "issues", Action: "opened", InstallationID: 5, RepositoryID: 6,
		})
	}
	reqBefore, _ := g.Stats()
	h := Hook{Kind: "repo", Owner: "octo", Repo: "hello", ID: 12}
	got, err := c.HookDeliveries(ctx, h, now.Add(-229*time.Minute))
	if err != nil {
		t.Fatalf("HookDeliveries: %v", err)
	}
	if len(got) != 230 {
		t.Fatalf("HookDeliveries = %d items, want 230", len(got))
	}
	if reqs, _ := g.Stats(); reqs-reqBefore != 3 {
		t.Errorf("HookDeliveries made %d requests, want 3 (it should stop at since, not read page 4)", reqs-reqBefore)
	}
	for i, d := range got {
		if want := fmt.Sprintf("guid-%03d", i); d.GUID != want || d.ID != ids[want] {
			t.Fatalf("HookDeliveries[%d] = %s (%d), want %s (%d), newest first", i, d.GUID, d.ID, want, ids[want])
		}
	}
	want := HookDelivery{
		ID: ids["guid-010"], GUID: "guid-010", DeliveredAt: now.Add(-10 * time.Minute).UTC(),
		Status: "Invalid HTTP Response: 502", StatusCode: 502, Event: "issues", Action: "opened",
		InstallationID: 5, RepositoryID: 6,
	}
	if got[10] != want {
		t.Errorf("HookDeliveries[10] = %+v, want %+v", got[10], want)
	}
	if got[1].Status != "OK" || got[1].StatusCode != 200 {
		t.Errorf("HookDeliveries[1] status = %q %d, want OK 200", got[1].Status, got[1].StatusCode)
	}

	// A since before everything reads every page, and an empty hook lists nothing.
	all, err := c.HookDeliveries(ctx, h, time.Time{})
	if err != nil || len(all) != 320 {
		t.Errorf("HookDeliveries(since zero) = %d items, %v; want 320", len(all), err)
	}
	g.AddHook("org:octo#7")
	none, err := c.HookDeliveries(ctx, Hook{Kind: "org", Owner: "octo", ID: 7}, time.Time{})
	if err != nil || len(none) != 0 {
		t.Errorf("HookDeliveries(empty org hook) = %v, %v; want none", none, err)
	}
}

func TestRedeliver(t *testing.T) {
	t.Parallel()
	g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}})
	c := newClient(t, Options{BaseURL: url, Token: testToken})
	ctx := context.Background()
	for _, h := range []Hook{
		{Kind: "repo", Owner: "octo", Repo: "hello", ID: 12},
		{Kind: "org", Owner: "octo", ID: 7},
	} {
		t.Run(h.String(), func(t *testing.T) {
			id := g.AddHookDelivery(h.String(), fake.HookDeliveryRecord{GUID: "g1", StatusCode: 0, Event: "push"})
			if err := c.Redeliver(ctx, h, id); err != nil {
				t.Fatalf("Redeliver = %v, want nil (202 Accepted)", err)
			}
			if got := g.RedeliveryRequests(h.String()); !slices.Equal(got, []int64{id}) {
				t.Errorf("RedeliveryRequests = %v, want [%d]", got, id)
			}
			ds, err := c.HookDeliveries(ctx, h, time.Time{})
			if err != nil || len(ds) != 2 {
				t.Fatalf("HookDeliveries after Redeliver = %+v, %v; want 2 attempts", ds, err)
			}
			if top := ds[0]; top.GUID != "g1" || !top.Redelivery || top.ID == id || top.StatusCode != 200 {
				t.Errorf("newest attempt = %+v, want a 200 redelivery of g1 with a new id", top)
			}
		})
	}
}

func TestHookDeliveriesApp(t *testing.T) {
	t.Parallel()
	key, pemKey := genKey(t)
	g, url := startFake(t, fake.GitHubOptions{AppID: 321, AppPublicKey: &key.PublicKey})
	c := newClient(t, Options{BaseURL: url, AppID: 321, PrivateKey: pemKey})
	ctx := context.Background()
	app := Hook{Kind: "app"}
	id := g.AddHookDelivery("app", fake.HookDeliveryRecord{GUID: "g1", StatusCode: 503, Event: "issues", InstallationID: 9})
	ds, err := c.HookDeliveries(ctx, app, time.Now().Add(-time.Hour))
	if err != nil || len(ds) != 1 || ds[0].ID != id || ds[0].InstallationID != 9 {
		t.Fatalf("HookDeliveries(app) = %+v, %v; want the one delivery %d", ds, err, id)
	}
	if err := c.Redeliver(ctx, app, id); err != nil {
		t.Fatalf("Redeliver(app) = %v, want nil", err)
	}
	if got := g.RedeliveryRequests("app"); !slices.Equal(got, []int64{id}) {
		t.Errorf("RedeliveryRequests(app) = %v, want [%d]", got, id)
	}

	// Repository and organisation hooks need a token; the error says what to do.
	_, err = c.HookDeliveries(ctx, Hook{Kind: "repo", Owner: "o", Repo: "r", ID: 1}, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "app hook") {
		t.Errorf("HookDeliveries(repo hook, app auth) error = %v, want one pointing to the app hook", err)
	}
	if err := c.Redeliver(ctx, Hook{Kind: "org", Owner: "o", ID: 1}, 1); err == nil || !strings.Contains(err.Error(), "app hook") {
		t.Errorf("Redeliver(org hook, app auth) error = %v, want one pointing to the app hook", err)
	}

	// And the app hook needs the App.
	pat := newClient(t, Options{BaseURL: url, Token: testToken})
	if _, err := pat.HookDeliveries(ctx, app, time.Time{}); err == nil || !strings.Contains(err.Error(), "App") {
		t.Errorf("HookDeliveries(app hook, token auth) error = %v, want one asking for App authentication", err)
	}
}

func TestHookDeliveriesNotFound(t *testing.T) {
	t.Parallel()
	g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}})
	c := newClient(t, Options{BaseURL: url, Token: testToken})
	ctx := context.Background()
	known := Hook{Kind: "repo", Owner: "octo", Repo: "hello", ID: 12}
	g.AddHook(known.String())
	tests := []struct {
		name string
		call func() error
	}{
		{"list unknown repo hook", func() error {
			_, err := c.HookDeliveries(ctx, Hook{Kind: "repo", Owner: "octo", Repo: "hello", ID: 13}, time.Time{})
			return err
		}},
		{"list unknown org hook", func() error {
			_, err := c.HookDeliveries(ctx, Hook{Kind: "org", Owner: "octo", ID: 7}, time.Time{})
			return err
		}},
		{"redeliver on unknown hook", func() error {
			return c.Redeliver(ctx, Hook{Kind: "org", Owner: "octo", ID: 7}, 1)
		}},
		{"redeliver unknown delivery", func() error { return c.Redeliver(ctx, known, 424242) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *Error
			if !errors.As(err, &e) || e.Status != 404 || e.Message != "Not Found" || e.RequestID == "" || e.Temporary() {
				t.Errorf("error = %v, want a permanent 404 Not Found *Error with a request id", err)
			}
		})
	}
}
