package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Owner is the reserved account the synthetic repositories belong to:
// whatever a load test leaves in the store is easy to tell apart (and to
// filter out with `hookwise deliveries list --repo`).
const Owner = "hookwise-loadtest"

// DefaultSize is the default payload size: 11.5 KB, a typical
// issues.opened delivery with a few paragraphs of body.
const DefaultSize = 11776

// numberMark stands for the issue number in a payload template; it is
// replaced by each delivery's own number.
const numberMark = "9876543210123"

// template is an issues delivery cut at the places its issue number goes.
type template struct {
	parts [][]byte
}

// render returns the payload with number n.
func (t template) render(n int) []byte {
	num := strconv.Itoa(n)
	size := 0
	for _, p := range t.parts {
		size += len(p)
	}
	out := make([]byte, 0, size+len(num)*(len(t.parts)-1))
	for i, p := range t.parts {
		if i > 0 {
			out = append(out, num...)
		}
		out = append(out, p...)
	}
	return out
}

// newTemplate builds an issues delivery with action on repo (owner/name),
// shaped like GitHub's (issue, repository and sender objects with their
// URLs), its issue body padded with prose so that the delivery of a usual
// (7-digit) issue number is size bytes.
func newTemplate(action, repo string, size int) (template, error) {
	event := issuesEvent(action, repo)
	issue := event["issue"].(map[string]any)
	body := Prose(size)
	// Trim the body, then pad it, until the delivery is size bytes:
	// newlines cost two bytes once escaped.
	for range 2 * size {
		issue["body"] = body
		out, err := json.Marshal(event)
		if err != nil {
			return template{}, err
		}
		t := template{parts: bytes.Split(out, []byte(numberMark))}
		n := len(t.render(firstNumber))
		switch {
		case n == size || n > size && body == "":
			return t, nil
		case n > size:
			body = body[:max(0, len(body)-(n-size))]
		default:
			body += "."
		}
	}
	return template{}, fmt.Errorf("no %s delivery of %d bytes", action, size)
}

// IssuesPayload is an issues delivery with action on issue number of repo
// (owner/name), shaped like GitHub's, its body padded with prose so that
// the payload is size bytes (a 7-digit number; more or fewer digits move
// it by as many bytes): the delivery the load test sends.
func IssuesPayload(action, repo string, number, size int) ([]byte, error) {
	t, err := newTemplate(action, repo, size)
	if err != nil {
		return nil, err
	}
	return t.render(number), nil
}

// firstNumber is the first synthetic issue number: seven digits, like a
// busy repository's.
const firstNumber = 1_000_000

func issuesEvent(action, repo string) map[string]any {
	const api = "https://api.github.com"
	user := func(login string, id int64) map[string]any {
		u := api + "/users/" + login
		return map[string]any{
			"login": login, "id": id, "node_id": "MDQ6VXNlcjIxMDMxMDY3",
			"avatar_url":          fmt.Sprintf("https://avatars.githubusercontent.com/u/%d?v=4", id),
			"gravatar_id":         "",
			"url":                 u,
			"html_url":            "https://github.com/" + login,
			"followers_url":       u + "/followers",
			"following_url":       u + "/following{/other_user}",
			"gists_url":           u + "/gists{/gist_id}",
			"starred_url":         u + "/starred{/owner}{/repo}",
			"subscriptions_url":   u + "/subscriptions",
			"organizations_url":   u + "/orgs",
			"repos_url":           u + "/repos",
			"events_url":          u + "/events{/privacy}",
			"received_events_url": u + "/received_events",
			"type":                "User",
			"site_admin":          false,
		}
	}
	owner, name, _ := strings.Cut(repo, "/")
	sender := user("hookwise-loadtest-sender", 21031067)
	base := api + "/repos/" + repo
	repository := map[string]any{
		"id": 186853002, "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
		"name": name, "full_name": repo, "private": true,
		"owner": user(owner, 6811672), "html_url": "https://github.com/" + repo,
		"description": "Synthetic deliveries of hookwise loadtest", "fork": false,
		"url": base, "issues_url": base + "/issues{/number}", "pulls_url": base + "/pulls{/number}",
		"labels_url": base + "/labels{/name}", "comments_url": base + "/comments{/number}",
		"git_url": "git://github.com/" + repo + ".git", "ssh_url": "git@github.com:" + repo + ".git",
		"clone_url":  "https://github.com/" + repo + ".git",
		"created_at": "2019-05-15T15:19:25Z", "updated_at": "2019-05-15T15:21:03Z", "pushed_at": "2019-05-15T15:20:57Z",
		"size": 0, "stargazers_count": 12, "watchers_count": 12, "language": "Go",
		"has_issues": true, "has_projects": true, "has_downloads": true, "has_wiki": true, "has_pages": false,
		"forks_count": 1, "archived": false, "disabled": false, "open_issues_count": 3, "license": nil,
		"forks": 1, "open_issues": 3, "watchers": 12, "default_branch": "main",
		"topics": []string{"webhooks", "triage"}, "visibility": "private",
	}
	issueURL := base + "/issues/" + numberMark
	label := map[string]any{"id": 208045946, "node_id": "MDU6TGFiZWwyMDgwNDU5NDY=", "url": base + "/labels/bug",
		"name": "bug", "color": "f29513", "default": true, "description": "Something isn't working"}
	labels := []any{}
	if action == "labeled" {
		labels = append(labels, label)
	}
	issue := map[string]any{
		"url": issueURL, "repository_url": base,
		"labels_url": issueURL + "/labels{/name}", "comments_url": issueURL + "/comments",
		"events_url": issueURL + "/events", "html_url": "https://github.com/" + repo + "/issues/" + numberMark,
		"id": 444500041, "node_id": "MDU6SXNzdWU0NDQ1MDAwNDE=", "number": json.Number(numberMark),
		"title": "Crash when the config file has a trailing comment", "user": sender,
		"labels": labels, "state": "open", "locked": false, "assignee": nil, "assignees": []any{},
		"milestone": nil, "comments": 0, "created_at": "2019-05-15T15:20:18Z", "updated_at": "2019-05-15T15:20:18Z",
		"closed_at": nil, "author_association": "OWNER", "active_lock_reason": nil,
		"reactions": map[string]any{"url": issueURL + "/reactions", "total_count": 0, "+1": 0, "-1": 0},
		"body":      "",
	}
	event := map[string]any{"action": action, "issue": issue, "repository": repository, "sender": sender}
	if action == "labeled" {
		event["label"] = label
	}
	return event
}

// Prose returns n bytes of words drawn at random (with a fixed seed) from
// an issue-report vocabulary, in sentences and paragraphs: text that
// compresses about as well as a real issue body does, not a repeated
// paragraph any compressor would shrink to nothing.
func Prose(n int) string {
	words := strings.Fields(`the a an to of in on for with when after before then and or but not
		service config file loader panic crash error log trace stack request response webhook
		delivery issue comment label review pull branch commit push workflow run job step
		expected actual got saw reproduce steps start send open close restart retry timeout
		version release build test fails passes flaky slow fast memory cpu disk network proxy
		token secret header body payload json yaml field key value missing wrong empty null
		user admin bot team repository organisation install upgrade downgrade linux macos windows
		docker kubernetes container image database sqlite postgres queue worker handler server
		client browser page button click screen output input line column character unicode
		is was were has have had does did can could should would will might must seems looks`)
	r := rand.New(rand.NewPCG(7, 11))
	var b strings.Builder
	for b.Len() < n {
		sentence := 6 + r.IntN(14)
		for i := range sentence {
			w := words[r.IntN(len(words))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			b.WriteString(w)
			if i < sentence-1 {
				b.WriteByte(' ')
			}
		}
		if r.IntN(5) == 0 {
			b.WriteString(".\n\n")
		} else {
			b.WriteString(". ")
		}
	}
	return b.String()[:n]
}
