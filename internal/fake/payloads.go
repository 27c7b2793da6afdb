package fake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

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
	return must(map[string]any{
		"action": action,
		"issue": map[string]any{
			"url":    fmt.Sprintf("https://api.github.com/repos/%s/issues/%d", repo, number),
			"number": number, "title": title, "body": body, "state": "open", "locked": false,
			"user": userJSON(sender, senderType(sender)), "labels": []any{}, "comments": 0,
			"created_at": "2026-11-29T10:00:00Z", "updated_at": "2026-11-29T10:00:00Z",
			"author_association": "NONE",
		},
		"repository": repoJSON(repo),
		"sender":     userJSON(sender, senderType(sender)),
	})
}

// PullRequestEvent is a `pull_request` payload. reviewer is used for
// review_requested.
func PullRequestEvent(action, repo string, number int, title, body, headSHA, sender, reviewer string, draft bool) []byte {
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
	return must(p)
}

// WorkflowRunEvent is a completed `workflow_run` payload on the given pull
// requests.
func WorkflowRunEvent(repo string, runID int64, name, conclusion, headSHA string, prs ...int) []byte {
	var pulls []any
	for _, n := range prs {
		pulls = append(pulls, map[string]any{"number": n, "head": map[string]any{"sha": headSHA, "ref": "feature"}})
	}
	return must(map[string]any{
		"action": "completed",
		"workflow_run": map[string]any{
			"id": runID, "name": name, "head_branch": "feature", "head_sha": headSHA, "status": "completed",
			"conclusion": conclusion, "html_url": fmt.Sprintf("https://github.com/%s/actions/runs/%d", repo, runID),
			"pull_requests": pulls, "event": "pull_request", "run_attempt": 1,
		},
		"repository": repoJSON(repo),
		"sender":     userJSON("octocat", "User"),
	})
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
	body, ctype := d.Payload, "application/json"
	if d.Form {
		body, ctype = []byte("payload="+url.QueryEscape(string(d.Payload))), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
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
