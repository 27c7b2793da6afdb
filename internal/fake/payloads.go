package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hookwise/hookwise/internal/webhook"
)

// The payload builders make webhook bodies of the shape GitHub sends (the
// fields hookwise reads and the ones around them), for the demo and tests.

func repoJSON(repo string) map[string]any {
	owner, name, _ := strings.Cut(repo, "/")
	return map[string]any{
		"id": 1296269, "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5", "name": name, "full_name": repo, "private": false,
		"owner":    userJSON(owner, "Organization"),
		"html_url": "https://github.com/" + repo, "default_branch": "main",
	}
}

func userJSON(login, typ string) map[string]any {
	return map[string]any{"login": login, "id": len(login) * 1009, "type": typ,
		"html_url": "https://github.com/" + strings.TrimSuffix(login, "[bot]")}
}

func senderType(login string) string {
	if strings.HasSuffix(login, "[bot]") {
		return "Bot"
	}
	return "User"
}

func must(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// IssueEvent is an `issues` payload for action on issue number of repo.
func IssueEvent(action, repo string, number int, title, body, sender string) []byte {
	return must(issuePayload(action, repo, IssueSnapshot{Number: number, Title: title, Body: body, Author: sender}, sender))
}

// IssueSnapshot is an issue as a payload shows it at one moment. Payloads
// carry the whole issue as it is after the change they report, so a stream
// of them tracks the issue's state.
type IssueSnapshot struct {
	Number    int
	Title     string
	Body      string
	Author    string // who opened it
	State     string // "open" when empty, or "closed"
	Labels    []string
	Assignees []string
	Comments  int // how many comments it has
	// UpdatedAt is the issue's updated_at; zero: 2026-11-29T10:00:00Z,
	// its created_at.
	UpdatedAt time.Time
}

// IssueSnapshotEvent is an `issues` payload of action on is, sent by
// sender.
func IssueSnapshotEvent(action, repo string, is IssueSnapshot, sender string) []byte {
	return must(issuePayload(action, repo, is, sender))
}

// issueObject is the "issue" object of `issues` and `issue_comment`
// payloads.
func issueObject(repo string, is IssueSnapshot) map[string]any {
	state := is.State
	if state == "" {
		state = "open"
	}
	labels := []any{}
	for _, l := range is.Labels {
		labels = append(labels, labelJSON(repo, l))
	}
	assignees := []any{}
	var assignee any
	for _, a := range is.Assignees {
		assignees = append(assignees, userJSON(a, senderType(a)))
	}
	if len(assignees) > 0 {
		assignee = assignees[0]
	}
	var closedAt any
	if state == "closed" {
		closedAt = "2026-11-29T10:30:00Z"
	}
	updatedAt := "2026-11-29T10:00:00Z"
	if !is.UpdatedAt.IsZero() {
		updatedAt = is.UpdatedAt.UTC().Format(time.RFC3339)
	}
	return map[string]any{
		"url":      fmt.Sprintf("https://api.github.com/repos/%s/issues/%d", repo, is.Number),
		"html_url": fmt.Sprintf("https://github.com/%s/issues/%d", repo, is.Number),
		"number":   is.Number, "title": is.Title, "body": is.Body, "state": state, "locked": false,
		"user": userJSON(is.Author, senderType(is.Author)), "labels": labels,
		"assignee": assignee, "assignees": assignees, "comments": is.Comments,
		"created_at": "2026-11-29T10:00:00Z", "updated_at": updatedAt, "closed_at": closedAt,
		"author_association": "NONE",
	}
}

// issuePayload is an `issues` payload as a map, so that callers can add
// what some actions carry: changes (edited), label (labeled), assignee
// (assigned).
func issuePayload(action, repo string, is IssueSnapshot, sender string) map[string]any {
	return map[string]any{
		"action":     action,
		"issue":      issueObject(repo, is),
		"repository": repoJSON(repo),
		"sender":     userJSON(sender, senderType(sender)),
	}
}

// labelJSON is a label object as payloads carry it; its id is derived from
// the name so that the same label looks the same in every payload.
func labelJSON(repo, name string) map[string]any {
	id := int64(208045946)
	for _, c := range name {
		id = id*31 + int64(c)
	}
	id &= 1<<40 - 1
	return map[string]any{
		"id": id, "node_id": fmt.Sprintf("LA_%d", id), "name": name, "color": "ededed",
		"url":     fmt.Sprintf("https://api.github.com/repos/%s/labels/%s", repo, url.PathEscape(name)),
		"default": false, "description": nil,
	}
}

// IssueComment is a comment as an `issue_comment` payload shows it.
type IssueComment struct {
	ID   int64
	Body string
	User string
	// Bot marks the author as a Bot account. Logins ending in "[bot]" are
	// bots anyway; a machine user such as "hookwise-bot" needs saying so.
	Bot bool
}

// IssueCommentEvent is an `issue_comment` payload: c, written by c.User
// (the sender), on the issue is.
func IssueCommentEvent(action, repo string, is IssueSnapshot, c IssueComment) []byte {
	typ := senderType(c.User)
	if c.Bot {
		typ = "Bot"
	}
	return must(map[string]any{
		"action": action,
		"issue":  issueObject(repo, is),
		"comment": map[string]any{
			"id": c.ID, "node_id": fmt.Sprintf("IC_%d", c.ID), "body": c.Body,
			"url":        fmt.Sprintf("https://api.github.com/repos/%s/issues/comments/%d", repo, c.ID),
			"html_url":   fmt.Sprintf("https://github.com/%s/issues/%d#issuecomment-%d", repo, is.Number, c.ID),
			"issue_url":  fmt.Sprintf("https://api.github.com/repos/%s/issues/%d", repo, is.Number),
			"user":       userJSON(c.User, typ),
			"created_at": "2026-11-29T10:05:00Z", "updated_at": "2026-11-29T10:05:00Z",
			"author_association": "NONE",
		},
		"repository": repoJSON(repo),
		"sender":     userJSON(c.User, typ),
	})
}

// PushCommit is one commit of a push.
type PushCommit struct {
	ID      string // 40-hex SHA
	Message string
	Author  string // login
}

// PushEvent is a `push` payload: pusher moved ref from before to after
// with commits, oldest first. Push events have no action.
func PushEvent(repo, ref, before, after, pusher string, commits []PushCommit) []byte {
	list := []any{}
	var head any
	for _, c := range commits {
		person := map[string]any{"name": c.Author, "email": c.Author + "@users.noreply.github.com", "username": c.Author}
		commit := map[string]any{
			"id": c.ID, "tree_id": c.ID, "distinct": true, "message": c.Message,
			"timestamp": "2026-11-29T10:00:00Z",
			"url":       fmt.Sprintf("https://github.com/%s/commit/%s", repo, c.ID),
			"author":    person, "committer": person,
			"added": []any{}, "removed": []any{}, "modified": []any{},
		}
		list = append(list, commit)
		head = commit
	}
	return must(map[string]any{
		"ref": ref, "before": before, "after": after,
		"created": false, "deleted": false, "forced": false, "base_ref": nil,
		"compare":     fmt.Sprintf("https://github.com/%s/compare/%s...%s", repo, before[:min(12, len(before))], after[:min(12, len(after))]),
		"commits":     list,
		"head_commit": head,
		"pusher":      map[string]any{"name": pusher, "email": pusher + "@users.noreply.github.com"},
		"repository":  repoJSON(repo),
		"sender":      userJSON(pusher, senderType(pusher)),
	})
}

// PullRequestEvent is a `pull_request` payload. reviewer is used for
// review_requested.
func PullRequestEvent(action, repo string, number int, title, body, headSHA, sender, reviewer string, draft bool) []byte {
	return must(pullRequestPayload(action, repo, number, title, body, headSHA, sender, reviewer, draft))
}

// pullRequestPayload is a `pull_request` payload as a map, so that callers
// can add what some actions carry (before and after for synchronize) and
// set the size of the change.
func pullRequestPayload(action, repo string, number int, title, body, headSHA, sender, reviewer string, draft bool) map[string]any {
	p := map[string]any{
		"action": action, "number": number,
		"pull_request": map[string]any{
			"url":    fmt.Sprintf("https://api.github.com/repos/%s/pulls/%d", repo, number),
			"number": number, "title": title, "body": body, "state": "open", "locked": false, "draft": draft,
			"user": userJSON(sender, senderType(sender)), "labels": []any{},
			"head":      map[string]any{"ref": "feature", "sha": headSHA, "repo": repoJSON(repo)},
			"base":      map[string]any{"ref": "main", "sha": "0000000000000000000000000000000000000000", "repo": repoJSON(repo)},
			"additions": 10, "deletions": 2, "changed_files": 1,
		},
		"repository": repoJSON(repo),
		"sender":     userJSON(sender, senderType(sender)),
	}
	if reviewer != "" {
		p["requested_reviewer"] = userJSON(reviewer, "User")
	}
	return p
}

// WorkflowRunEvent is a completed `workflow_run` payload on the given pull
// requests.
func WorkflowRunEvent(repo string, runID int64, name, conclusion, headSHA string, prs ...int) []byte {
	return must(workflowRunPayload(repo, runID, name, conclusion, headSHA, "feature", prs...))
}

// workflowRunPayload is WorkflowRunEvent on branch, as a map.
func workflowRunPayload(repo string, runID int64, name, conclusion, headSHA, branch string, prs ...int) map[string]any {
	var pulls []any
	for _, n := range prs {
		pulls = append(pulls, map[string]any{"number": n, "head": map[string]any{"sha": headSHA, "ref": branch}})
	}
	return map[string]any{
		"action": "completed",
		"workflow_run": map[string]any{
			"id": runID, "name": name, "head_branch": branch, "head_sha": headSHA, "status": "completed",
			"conclusion": conclusion, "html_url": fmt.Sprintf("https://github.com/%s/actions/runs/%d", repo, runID),
			"pull_requests": pulls, "event": "pull_request", "run_attempt": 1,
		},
		"repository": repoJSON(repo),
		"sender":     userJSON("octocat", "User"),
	}
}

// StarEvent is a `star` payload: noise hookwise ignores.
func StarEvent(repo, sender string) []byte {
	return must(map[string]any{"action": "created", "starred_at": "2026-11-29T10:00:00Z",
		"repository": repoJSON(repo), "sender": userJSON(sender, "User")})
}

// Delivery is one signed webhook request as GitHub sends it.
type Delivery struct {
	Event, GUID, HookID string
	// Target is X-GitHub-Hook-Installation-Target-Type, the kind of hook:
	// "repository" (the default), "organization" or "integration".
	Target  string
	Payload []byte
	Form    bool // send as application/x-www-form-urlencoded
}

// Send posts d to url signed with secret and returns the status code.
func Send(client *http.Client, endpoint, secret string, d Delivery) (int, error) {
	return sendContext(context.Background(), client, endpoint, secret, d)
}

// sendContext is Send bounded by ctx, so a stream being sent can be stopped.
func sendContext(ctx context.Context, client *http.Client, endpoint, secret string, d Delivery) (int, error) {
	body, ctype := d.Payload, "application/json"
	if d.Form {
		body, ctype = []byte("payload="+url.QueryEscape(string(d.Payload))), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "GitHub-Hookshot/fake")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	hook := d.HookID
	if hook == "" {
		hook = "1"
	}
	req.Header.Set("X-GitHub-Hook-ID", hook)
	target := d.Target
	if target == "" {
		target = "repository"
	}
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", target)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(secret), body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
	return resp.StatusCode, nil
}
