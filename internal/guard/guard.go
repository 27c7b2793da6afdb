// Package guard is the one gate between what hookwise writes and GitHub.
// A comment is made of the model's answer and of strings from payloads,
// and either may have been written by an attacker (the model can be
// steered by the issue it reads). Whatever they say, a comment that passes
// Comment pings nobody but the people hookwise addresses, loads no image,
// holds no raw HTML, no link with a scheme other than http(s), no forged
// hookwise marker, no control or bidirectional-override characters, no
// code fence left open, and fits in a GitHub comment.
//
// Neutralising inserts an invisible zero-width space where a construct
// would start (after "@", "<", "!", "&", before a link's destination), so
// the text reads the same, in prose and in code blocks alike, while
// GitHub no longer parses it as a mention, a tag, an image or an entity.
// Code blocks get no exemption: a parser of ours that took text for code
// while GitHub did not would be a hole.
package guard

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxComment is the most characters a comment body may have before its
// marker is added: GitHub refuses bodies over 65,536 characters with a 422,
// and the marker and the note saying what was cut need room.
const MaxComment = 60_000

// zwsp is the zero-width space inserted to break a construct apart.
const zwsp = "\u200b"

// Comment returns body made safe to post on GitHub. addressed are the
// logins hookwise itself addresses (the thread's author, a requested
// reviewer); mentions of anyone else, and of every team, are neutralised.
func Comment(body string, addressed []string) string {
	s := dropInvisible(body)
	s = markerRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "<!-- hookwise:", "")
	s = entityRE.ReplaceAllString(s, "&"+zwsp+"$1")
	s = tagRE.ReplaceAllString(s, "<"+zwsp+"$1")
	s = strings.ReplaceAll(s, "![", "!"+zwsp+"[")
	s = schemeRE.ReplaceAllString(s, "$1"+zwsp+":")
	s = inertLinks(s)
	s = crossRefRE.ReplaceAllString(s, "$1"+zwsp+"#$2")
	s = mentions(s, addressed)
	s = closeFences(s)
	return Cap(s, MaxComment, "the comment was longer than GitHub allows")
}

var (
	// markerRE matches a hookwise marker: only hookwise writes them.
	markerRE = regexp.MustCompile(`(?s)<!--\s*hookwise:.*?-->`)
	// entityRE matches the start of an HTML entity ("&#58;", "&colon;"),
	// which Markdown decodes in link destinations.
	entityRE = regexp.MustCompile(`&(#|[A-Za-z][A-Za-z0-9]*;)`)
	// tagRE matches what could open raw HTML: a tag, a closing tag, a
	// comment, a declaration or a processing instruction.
	tagRE = regexp.MustCompile(`<([A-Za-z/!?])`)
	// schemeRE matches the URL schemes that run or embed something.
	schemeRE = regexp.MustCompile(`(?i)\b(javascript|vbscript|data|file|blob)\\?:`)
	// crossRefRE matches a reference to another repository's issue, which
	// would put a "mentioned this" event on that thread.
	crossRefRE = regexp.MustCompile(`([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)#(\d)`)
	// destRE matches where a link's destination starts: after "](" in an
	// inline link, after "]:" in a reference definition.
	destRE = regexp.MustCompile(`\]\(\s*<?|(?m)^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?`)
	// mentionRE matches an @-mention: a user or an org/team.
	mentionRE = regexp.MustCompile(`@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))(/[A-Za-z0-9_.-]+)?`)
)

// dropInvisible removes control characters (but newline and tab), and the
// zero-width and bidirectional formatting characters that hide text or
// reorder it on screen.
func dropInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
}

// inertLinks makes a link whose destination has a scheme other than http or
// https point nowhere, by starting the destination with a zero-width
// space: what follows is then a relative path, not a scheme.
func inertLinks(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range destRE.FindAllStringIndex(s, -1) {
		b.WriteString(s[last:m[1]])
		last = m[1]
		if !allowedDestination(s[m[1]:]) {
			b.WriteString(zwsp)
		}
	}
	b.WriteString(s[last:])
	return b.String()
}

// allowedDestination reports whether the link destination at the start of
// rest is relative or http(s). Markdown drops backslashes before
// punctuation in a destination, so they are dropped here too.
func allowedDestination(rest string) bool {
	end := strings.IndexAny(rest, " \t\n)>")
	if end < 0 {
		end = len(rest)
	}
	dest := strings.ToLower(strings.ReplaceAll(rest[:end], `\`, ""))
	colon := strings.IndexByte(dest, ':')
	if colon < 0 || strings.ContainsAny(dest[:colon], "/?#") {
		return true // no scheme: a path, a query or a fragment
	}
	scheme := dest[:colon]
	return scheme == "http" || scheme == "https"
}

// mentions neutralises every @-mention but those of the addressed logins.
// An "@" right after a letter or digit is part of an e-mail address, which
// GitHub does not treat as a mention.
func mentions(s string, addressed []string) string {
	var b strings.Builder
	last := 0
	for _, m := range mentionRE.FindAllStringSubmatchIndex(s, -1) {
		at := m[0]
		if at > 0 && isAlnum(s[at-1]) {
			continue
		}
		login, team := s[m[2]:m[3]], m[4] >= 0
		if !team && addressedLogin(login, addressed) {
			continue
		}
		b.WriteString(s[last : at+1])
		b.WriteString(zwsp)
		last = at + 1
	}
	b.WriteString(s[last:])
	return b.String()
}

func addressedLogin(login string, addressed []string) bool {
	for _, a := range addressed {
		if a != "" && strings.EqualFold(a, login) {
			return true
		}
	}
	return false
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// closeFences closes a code fence left open, so that what follows it (the
// marker, a note) is not swallowed into a code block.
func closeFences(s string) string {
	fence, _ := openFence(s)
	if fence == "" {
		return s
	}
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s + fence + "\n"
}

// openFence returns the code fence that s leaves open and the offset of
// the line that opens it, or "" when every fence is closed.
func openFence(s string) (fence string, at int) {
	off := 0
	for line := range strings.Lines(s) {
		f := fenceOf(line)
		switch {
		case f == "":
		case fence == "":
			fence, at = f, off
		case f[0] == fence[0] && len(f) >= len(fence) && strings.TrimSpace(strings.TrimLeft(line, " ")[len(f):]) == "":
			fence = ""
		}
		off += len(line)
	}
	return fence, at
}

// fenceOf returns the fence (``` or ~~~, three or more) that line opens or
// closes, or "".
func fenceOf(line string) string {
	trimmed := strings.TrimLeft(line, " ")
	if len(line)-len(trimmed) > 3 || len(trimmed) < 3 {
		return ""
	}
	c := trimmed[0]
	if c != '`' && c != '~' {
		return ""
	}
	n := 0
	for n < len(trimmed) && trimmed[n] == c {
		n++
	}
	if n < 3 {
		return ""
	}
	return trimmed[:n]
}

// Cap returns s cut to at most max characters (runes), at a line break
// when one is near, followed by a note saying how much was cut and why;
// s itself when it fits. The note counts towards max.
func Cap(s string, max int, why string) string {
	n := utf8.RuneCountInString(s)
	if n <= max {
		return s
	}
	note := fmt.Sprintf("\n\n_[%d characters cut: %s.]_", n-max, why)
	// Room for the note and for closing a fence of ordinary length.
	keep := max - utf8.RuneCountInString(note) - fenceRoom
	if keep <= 0 {
		return string([]rune(s)[:max])
	}
	cut := byteOffset(s, keep)
	if nl := strings.LastIndexByte(s[:cut], '\n'); nl > cut*3/4 {
		cut = nl
	}
	head := s[:cut]
	// A fence left open is closed, or, when its closing line would not
	// fit, cut off with what it holds.
	if fence, at := openFence(head); len(fence)+2 > fenceRoom {
		head = head[:at]
	}
	return closeFences(head) + note
}

// fenceRoom is what Cap keeps free for closing a code fence.
const fenceRoom = 16

// byteOffset is the byte offset of the rune at index i of s.
func byteOffset(s string, i int) int {
	for off := range s {
		if i == 0 {
			return off
		}
		i--
	}
	return len(s)
}

// Cell returns s as the text of one Markdown table cell: line breaks
// become spaces and pipes are escaped, so the row keeps its columns.
func Cell(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return strings.ReplaceAll(strings.ReplaceAll(s, `\|`, "|"), "|", `\|`)
}
