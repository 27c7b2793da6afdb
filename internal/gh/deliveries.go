package gh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v84/github"
)

// Hook names a webhook whose deliveries GitHub keeps: a repository's, an
// organisation's, or the App's own.
type Hook struct {
	// Kind is "repo", "org" or "app".
	Kind string
	// Owner is the repository owner (repo) or the organisation (org); Repo
	// is the repository name (repo only). Both are empty for app.
	Owner, Repo string
	// ID is the hook id GitHub assigned; unused for app.
	ID int64
}

// String returns "repo:owner/name#id", "org:owner#id" or "app", the form
// ParseHook reads.
func (h Hook) String() string {
	switch h.Kind {
	case "repo":
		return "repo:" + h.Owner + "/" + h.Repo + "#" + strconv.FormatInt(h.ID, 10)
	case "org":
		return "org:" + h.Owner + "#" + strconv.FormatInt(h.ID, 10)
	case "app":
		return "app"
	}
	return fmt.Sprintf("%s:%s/%s#%d", h.Kind, h.Owner, h.Repo, h.ID)
}

// ParseHook reads a hook written as String writes it: "repo:owner/name#id",
// "org:owner#id" or "app".
func ParseHook(s string) (Hook, error) {
	bad := func(why string) (Hook, error) {
		return Hook{}, fmt.Errorf("gh: hook %q: %s; want repo:owner/name#id, org:owner#id or app", s, why)
	}
	if s == "app" {
		return Hook{Kind: "app"}, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return bad("no kind")
	}
	target, idText, ok := strings.Cut(rest, "#")
	if !ok {
		return bad("no #id")
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return bad("id is not a positive integer")
	}
	switch kind {
	case "repo":
		owner, name, ok := strings.Cut(target, "/")
		if !ok || !validName(owner) || !validName(name) {
			return bad("repository is not owner/name")
		}
		return Hook{Kind: "repo", Owner: owner, Repo: name, ID: id}, nil
	case "org":
		if !validName(target) {
			return bad("organisation name is missing or invalid")
		}
		return Hook{Kind: "org", Owner: target, ID: id}, nil
	}
	return bad("unknown kind " + strconv.Quote(kind))
}

// validName accepts a non-empty owner or repository name that cannot change
// the shape of an API path.
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/#?% ")
}

// HookDelivery is one delivery attempt GitHub made to a hook. A redelivery
// is an attempt of its own, with its own ID and the GUID of the original.
type HookDelivery struct {
	ID          int64
	GUID        string // X-GitHub-Delivery
	DeliveredAt time.Time
	Redelivery  bool
	// Status is GitHub's description ("OK", "Invalid HTTP Response: 503",
	// "timed out"); StatusCode is the receiver's HTTP status, 0 when there
	// was no response at all.
	Status         string
	StatusCode     int
	Event, Action  string
	InstallationID int64
	RepositoryID   int64
}

// hookClient picks the go-github client for h: the App's hooks speak with
// the App JWT; repository and organisation hooks need a token.
func (c *Client) hookClient(h Hook) (*github.Client, error) {
	switch h.Kind {
	case "app":
		if c.app == nil {
			return nil, fmt.Errorf("gh: %s: the app hook needs GitHub App authentication, not a token", h)
		}
		return c.app.jwtClient, nil
	case "repo", "org":
		if c.pat == nil {
			// An installation token would also do with the hooks
			// permission, but which installation is not ours to guess.
			return nil, fmt.Errorf("gh: %s: listing a %s hook's deliveries needs token authentication; with a GitHub App use the app hook (kind app)", h, h.Kind)
		}
		if h.Owner == "" || (h.Kind == "repo" && h.Repo == "") || h.ID <= 0 {
			return nil, fmt.Errorf("gh: %s: incomplete hook", h)
		}
		return c.pat, nil
	}
	return nil, fmt.Errorf("gh: %s: unknown hook kind %q", h, h.Kind)
}

// HookDeliveries lists the hook's deliveries delivered at or after since,
// newest first, following the cursor pages (per_page 100) and stopping at
// the first item older than since.
func (c *Client) HookDeliveries(ctx context.Context, h Hook, since time.Time) ([]HookDelivery, error) {
	g, err := c.hookClient(h)
	if err != nil {
		return nil, err
	}
	var out []HookDelivery
	opts := &github.ListCursorOptions{PerPage: perPage}
	for {
		var (
			ds   []*github.HookDelivery
			resp *github.Response
		)
		switch h.Kind {
		case "repo":
			ds, resp, err = g.Repositories.ListHookDeliveries(ctx, h.Owner, h.Repo, h.ID, opts)
		case "org":
			ds, resp, err = g.Organizations.ListHookDeliveries(ctx, h.Owner, h.ID, opts)
		default:
			ds, resp, err = g.Apps.ListHookDeliveries(ctx, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("list deliveries of %s: %w", h, toError(err, resp, c.token))
		}
		for _, d := range ds {
			hd := toHookDelivery(d)
			if hd.DeliveredAt.Before(since) {
				return out, nil
			}
			out = append(out, hd)
		}
		// A cursor that does not move would loop forever; GitHub never sends
		// one, but a proxy replaying a cached page could.
		if resp.Cursor == "" || resp.Cursor == opts.Cursor || len(ds) == 0 {
			return out, nil
		}
		opts.Cursor = resp.Cursor
	}
}

// Redeliver asks GitHub to deliver delivery id of h again. GitHub answers
// 202 and makes the attempt later; it appears in HookDeliveries as a new
// item with the same GUID.
func (c *Client) Redeliver(ctx context.Context, h Hook, id int64) error {
	g, err := c.hookClient(h)
	if err != nil {
		return err
	}
	var resp *github.Response
	switch h.Kind {
	case "repo":
		_, resp, err = g.Repositories.RedeliverHookDelivery(ctx, h.Owner, h.Repo, h.ID, id)
	case "org":
		_, resp, err = g.Organizations.RedeliverHookDelivery(ctx, h.Owner, h.ID, id)
	default:
		_, resp, err = g.Apps.RedeliverHookDelivery(ctx, id)
	}
	// go-github reports 202 Accepted as an *AcceptedError; here it is the
	// expected answer.
	var accepted *github.AcceptedError
	if err == nil || errors.As(err, &accepted) {
		return nil
	}
	return fmt.Errorf("redeliver delivery %d of %s: %w", id, h, toError(err, resp, c.token))
}

func toHookDelivery(d *github.HookDelivery) HookDelivery {
	return HookDelivery{
		ID:             d.GetID(),
		GUID:           d.GetGUID(),
		DeliveredAt:    d.GetDeliveredAt().Time,
		Redelivery:     d.GetRedelivery(),
		Status:         d.GetStatus(),
		StatusCode:     d.GetStatusCode(),
		Event:          d.GetEvent(),
		Action:         d.GetAction(),
		InstallationID: d.GetInstallationID(),
		RepositoryID:   d.GetRepositoryID(),
	}
}
