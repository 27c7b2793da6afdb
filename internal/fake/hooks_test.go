package fake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-github/v84/github"

	"github.com/hookwise/hookwise/internal/fake"
)

func TestGitHubHookDeliveriesPaging(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	c, srv := ghStart(t, g, ghTestToken)
	ctx := context.Background()

	now := time.Now().UTC().Truncate(time.Second)
	ids := make([]int64, 250) // ids[i] was delivered i minutes ago
	// Added oldest first but also out of order: the log is by delivery time.
	for i := 249; i >= 0; i-- {
		if i == 100 {
			continue
		}
		ids[i] = g.AddHookDelivery("repo:o/r#12", fake.HookDeliveryRecord{
			GUID: fmt.Sprintf("g%03d", i), DeliveredAt: now.Add(-time.Duration(i) * time.Minute),
			StatusCode: 200, Event: "issues", Action: "opened", InstallationID: 3,
		})
	}
	ids[100] = g.AddHookDelivery("repo:o/r#12", fake.HookDeliveryRecord{
		GUID: "g100", DeliveredAt: now.Add(-100 * time.Minute), StatusCode: 0, Event: "push",
	})
	// Beyond GitHub's three days: not listed any more.
	g.AddHookDelivery("repo:o/r#12", fake.HookDeliveryRecord{GUID: "old", DeliveredAt: now.Add(-73 * time.Hour), StatusCode: 500})

	var all []*github.HookDelivery
	var pages []int
	opts := &github.ListCursorOptions{PerPage: 100}
	for {
		ds, resp, err := c.Repositories.ListHookDeliveries(ctx, "o", "r", 12, opts)
		if err != nil {
			t.Fatalf("ListHookDeliveries: %v", err)
		}
		all = append(all, ds...)
		pages = append(pages, len(ds))
		if resp.Cursor == "" {
			if link := resp.Header.Get("Link"); link != "" {
				t.Errorf("last page Link = %q, want none", link)
			}
			break
		}
		want := fmt.Sprintf(`<%s/repos/o/r/hooks/12/deliveries?cursor=v1_%d&per_page=100>; rel="next"`, srv.URL, ds[len(ds)-1].GetID())
		if link := resp.Header.Get("Link"); link != want {
			t.Errorf("Link = %q, want %q", link, want)
		}
		opts.Cursor = resp.Cursor
	}
	if fmt.Sprint(pages) != "[100 100 50]" {
		t.Errorf("page sizes = %v, want [100 100 50]", pages)
	}
	for i, d := range all {
		if d.GetID() != ids[i] {
			t.Fatalf("delivery %d = %d (%s), want %d: newest first", i, d.GetID(), d.GetGUID(), ids[i])
		}
	}
	d := all[100]
	if d.GetGUID() != "g100" || d.GetStatusCode() != 0 || d.GetStatus() != "failed to connect to host" ||
		d.GetEvent() != "push" || d.Action != nil || d.InstallationID != nil || d.GetRedelivery() ||
		!d.GetDeliveredAt().Time.Equal(now.Add(-100*time.Minute)) {
		t.Errorf("delivery 100 = %v, want g100, push, no action or installation, failed to connect", d)
	}
	if d := all[0]; d.GetStatus() != "OK" || d.GetAction() != "opened" || d.GetInstallationID() != 3 {
		t.Errorf("delivery 0 = %v, want OK, opened, installation 3", d)
	}

	// The raw body has every field GitHub sends, delivered_at in RFC 3339.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/repos/o/r/hooks/12/deliveries", nil)
	req.Header.Set("Authorization", "Bearer "+ghTestToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var raw []map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || len(raw) != 30 {
		t.Fatalf("GET deliveries without per_page = %d items, %v; want 30", len(raw), err)
	}
	for _, k := range []string{"id", "guid", "delivered_at", "redelivery", "duration", "status", "status_code",
		"event", "action", "installation_id", "repository_id", "throttled_at"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("delivery JSON has no %q: %s", k, body[:200])
		}
	}
	if s, _ := raw[0]["delivered_at"].(string); s != now.Format(time.RFC3339) {
		t.Errorf("delivered_at = %q, want %q", s, now.Format(time.RFC3339))
	}

	// A new attempt goes on top and shifts nothing under a cursor in use.
	first, resp2, err := c.Repositories.ListHookDeliveries(ctx, "o", "r", 12, &github.ListCursorOptions{PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	g.AddHookDelivery("repo:o/r#12", fake.HookDeliveryRecord{GUID: "new", StatusCode: 200, Event: "issues"})
	second, _, err := c.Repositories.ListHookDeliveries(ctx, "o", "r", 12, &github.ListCursorOptions{PerPage: 100, Cursor: resp2.Cursor})
	if err != nil || len(second) != 100 || second[0].GetID() != ids[100] || first[99].GetID() != ids[99] {
		t.Errorf("page 2 after a new attempt starts with %v, %v; want %d", second[0].GetID(), err, ids[100])
	}
	if _, _, err := c.Repositories.ListHookDeliveries(ctx, "o", "r", 12, &github.ListCursorOptions{Cursor: "v1_bogus"}); ghStatus(err) != 400 {
		t.Errorf("ListHookDeliveries(bad cursor) = %v, want 400", err)
	}
}

func TestGitHubHookRedeliver(t *testing.T) {
	t.Parallel()
	g := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{ghTestToken}})
	c, _ := ghStart(t, g, ghTestToken)
	ctx := context.Background()

	type call struct {
		hook string
		rec  fake.HookDeliveryRecord
	}
	calls := make(chan call, 4)
	g.SetOnRedeliver(func(hook string, d fake.HookDeliveryRecord) {
		// Calling back into the fake proves no lock is held.
		g.RedeliveryRequests(hook)
		calls <- call{hook, d}
	})
	g.SetRedeliveryStatus(502)

	orig := fake.HookDeliveryRecord{GUID: "g1", DeliveredAt: time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
		StatusCode: 500, Event: "issues", Action: "opened", InstallationID: 4, RepositoryID: 5}
	id := g.AddHookDelivery("org:acme#7", orig)
	_, resp, err := c.Organizations.RedeliverHookDelivery(ctx, "acme", 7, id)
	var accepted *github.AcceptedError
	if !errors.As(err, &accepted) || resp.StatusCode != http.StatusAccepted || string(accepted.Raw) != "{}\n" {
		t.Fatalf("RedeliverHookDelivery = %v (%v), want 202 Accepted with {}", err, resp)
	}
	select {
	case got := <-calls:
		if got.hook != "org:acme#7" || got.rec != orig {
			t.Errorf("OnRedeliver(%q, %+v), want (org:acme#7, %+v)", got.hook, got.rec, orig)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnRedeliver was not called")
	}
	if got := g.RedeliveryRequests("org:acme#7"); !slices.Equal(got, []int64{id}) {
		t.Errorf("RedeliveryRequests = %v, want [%d]", got, id)
	}
	ds, _, err := c.Organizations.ListHookDeliveries(ctx, "acme", 7, nil)
	if err != nil || len(ds) != 2 {
		t.Fatalf("ListHookDeliveries after redelivery = %d, %v; want 2", len(ds), err)
	}
	if top := ds[0]; top.GetID() == id || top.GetGUID() != "g1" || !top.GetRedelivery() || top.GetStatusCode() != 502 ||
		top.GetStatus() != "Invalid HTTP Response: 502" || time.Since(top.GetDeliveredAt().Time) > time.Minute ||
		top.GetEvent() != "issues" || top.GetInstallationID() != 4 {
		t.Errorf("new attempt = %v, want a fresh 502 redelivery of g1 with its own id", top)
	}

	old := g.AddHookDelivery("org:acme#7", fake.HookDeliveryRecord{GUID: "old", DeliveredAt: time.Now().Add(-80 * time.Hour)})
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"unknown delivery", func() error {
			_, _, err := c.Organizations.RedeliverHookDelivery(ctx, "acme", 7, 999999)
			return err
		}},
		{"delivery older than three days", func() error {
			_, _, err := c.Organizations.RedeliverHookDelivery(ctx, "acme", 7, old)
			return err
		}},
		{"delivery of another hook", func() error {
			_, _, err := c.Repositories.RedeliverHookDelivery(ctx, "acme", "r", 7, id)
			return err
		}},
		{"list unknown hook", func() error {
			_, _, err := c.Organizations.ListHookDeliveries(ctx, "acme", 8, nil)
			return err
		}},
		{"list unknown repo hook", func() error {
			_, _, err := c.Repositories.ListHookDeliveries(ctx, "acme", "r", 7, nil)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var er *github.ErrorResponse
			if !errors.As(err, &er) || er.Response.StatusCode != 404 || er.Message != "Not Found" || er.DocumentationURL == "" {
				t.Errorf("%s = %v, want 404 Not Found with documentation_url", tc.name, err)
			}
		})
	}
	if got := g.RedeliveryRequests("org:acme#7"); len(got) != 1 {
		t.Errorf("RedeliveryRequests after refusals = %v, want only [%d]", got, id)
	}
}

func TestGitHubAppHookDeliveries(t *testing.T) {
	t.Parallel()
	// With no App key configured, any bearer token passes as the JWT.
	g := fake.NewGitHub(fake.GitHubOptions{AppID: 42, Tokens: []string{ghTestToken}})
	c, _ := ghStart(t, g, "a.jwt.token")
	ctx := context.Background()
	id := g.AddHookDelivery("app", fake.HookDeliveryRecord{GUID: "g1", StatusCode: 504, Event: "installation", Action: "created"})

	ds, _, err := c.Apps.ListHookDeliveries(ctx, &github.ListCursorOptions{PerPage: 100})
	if err != nil || len(ds) != 1 || ds[0].GetID() != id || ds[0].GetAction() != "created" {
		t.Fatalf("Apps.ListHookDeliveries = %v, %v; want the one delivery %d", ds, err, id)
	}
	if _, _, err := c.Apps.RedeliverHookDelivery(ctx, id); !errors.As(err, new(*github.AcceptedError)) {
		t.Errorf("Apps.RedeliverHookDelivery = %v, want 202 Accepted", err)
	}
	if got := g.RedeliveryRequests("app"); !slices.Equal(got, []int64{id}) {
		t.Errorf("RedeliveryRequests(app) = %v, want [%d]", got, id)
	}

	// The App's hook takes the JWT only: no JWT is 401, as on GitHub.
	anon, _ := ghStart(t, g, "")
	if _, _, err := anon.Apps.ListHookDeliveries(ctx, nil); ghStatus(err) != 401 {
		t.Errorf("Apps.ListHookDeliveries without a JWT = %v, want 401", err)
	}
	// Repository hooks take a token, not the JWT.
	g.AddHook("repo:o/r#1")
	if _, _, err := c.Repositories.ListHookDeliveries(ctx, "o", "r", 1, nil); ghStatus(err) != 401 {
		t.Errorf("Repositories.ListHookDeliveries with a JWT = %v, want 401", err)
	}
	pat, _ := ghStart(t, g, ghTestToken)
	if ds, _, err := pat.Repositories.ListHookDeliveries(ctx, "o", "r", 1, nil); err != nil || len(ds) != 0 {
		t.Errorf("Repositories.ListHookDeliveries(empty hook) = %v, %v; want none", ds, err)
	}
}
