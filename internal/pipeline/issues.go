package pipeline

import (
	"context"
	"strings"
	"unicode"

	"github.com/hookwise/hookwise/internal/store"
)

// planIssue plans the triage of an opened or edited issue.
func planIssue(_ context.Context, p *Pipeline, d store.Delivery, t *task) (*skip, error) {
	th := t.ev.Issue
	if th == nil {
		return skipf("no_handler", "%s has no issue", d.EventName()), nil
	}
	if HasMarker(th.body()) {
		return skipf("marker", "issue carries hookwise's marker"), nil
	}
	if n := contentChars(th.Title + " " + th.body()); n < t.settings.MinContentChars {
		return skipf("low_content", "title and body have %d letters or digits (min_content_chars %d)", n, t.settings.MinContentChars), nil
	}
	t.kind, t.number = &issueKind, th.Number
	t.seen = th.Title + "\n\n" + th.body()
	t.targets = []int{t.number}
	return threadFilters(th, t.settings), nil
}

// contentChars counts the letters and digits of s outside HTML comments,
// which issue templates use for their instructions.
func contentChars(s string) int {
	n := 0
	for {
		before, rest, found := strings.Cut(s, "<!--")
		for _, r := range before {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				n++
			}
		}
		if !found {
			return n
		}
		_, s, found = strings.Cut(rest, "-->")
		if !found {
			return n
		}
	}
}

// changed is how many characters differ between a and b, ignoring
// whitespace: what is left of the longer once their common prefix and
// suffix are taken away.
func changed(a, b string) int {
	a, b = strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " ")
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	return max(len(a), len(b)) - pre - suf
}
