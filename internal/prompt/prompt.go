// Package prompt renders the prompts hookwise sends to Claude. Templates are
// text/template files embedded in the binary; an operator may override any
// of them file by file from a directory, and edits there take effect without
// a restart.
//
// Each kind of work has a "system" template (stable instructions, identical
// for every event so the provider can cache it) and a "user" template (this
// event). System templates are rendered with the same data but should not
// use it: anything event-specific there defeats prompt caching.
//
// Everything in a prompt that came from GitHub is untrusted. This package
// is the one place that bounds it (see Limits: every Render applies them,
// whatever the template) and marks it as data: templates put each such
// string through tag, which wraps it in <name>…</name> and defuses any
// closing tag of that name inside it.
package prompt

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed templates/*.tmpl
var embedded embed.FS

const ext = ".tmpl"

// Thread is an issue or pull request with its earlier discussion.
type Thread struct {
	Repo     string // "owner/name"
	Number   int
	Title    string
	Body     string
	Author   string
	Labels   []string
	Comments []Comment // earlier discussion, oldest first
	// EarlierComments is how many comments before Comments are not shown.
	EarlierComments int
	// MoreLabels is how many labels past Labels are not shown.
	MoreLabels int
}

// Comment is one comment in a thread.
type Comment struct {
	Author, Body string
}

// IssueData is the data of the issue.* templates.
type IssueData struct {
	Thread        Thread
	AllowedLabels []string
}

// PullRequestData is the data of the pull_request.* and review_request.*
// templates.
type PullRequestData struct {
	Thread     Thread
	Base, Head string // branch names
	HeadSHA    string
	Files      []File
	Omitted    []string // files changed but not shown (size limits, binaries)
	// MoreFiles is how many changed files are not even named: past the
	// caps, or never listed by GitHub.
	MoreFiles     int
	AllowedLabels []string
	Reviewer      string // login asked to review; set for review_requested
}

// Additions is the number of added lines over Files.
func (d PullRequestData) Additions() int {
	n := 0
	for _, f := range d.Files {
		n += f.Additions
	}
	return n
}

// Deletions is the number of deleted lines over Files.
func (d PullRequestData) Deletions() int {
	n := 0
	for _, f := range d.Files {
		n += f.Deletions
	}
	return n
}

// File is one changed file of a pull request.
type File struct {
	Name, Status         string // Status as GitHub reports it: added, modified, removed, renamed…
	Additions, Deletions int
	Patch                string // unified diff hunks; "" for binary or too-large files
}

// RepoData is the data of the repository.system template: the part of
// every system prompt that is the same for all of a repository's threads
// of one kind, so that it is cached with the instructions before it.
type RepoData struct {
	Repo          string
	Context       string // the repository's context setting
	Labels        bool   // whether the answer chooses labels
	AllowedLabels []string
	MoreLabels    int    // allowed labels past AllowedLabels, not shown
	Schema        string // the answer's JSON schema, indented
}

// WorkflowRunData is the data of the workflow_run.* templates.
type WorkflowRunData struct {
	Repo, Name, Branch, HeadSHA, URL string
	Jobs                             []Job // failed jobs
	// MoreJobs is how many failed jobs past Jobs are not shown.
	MoreJobs int
	// Unexamined is how many of the run's jobs were not looked at (past
	// what is listed from GitHub); some of them may have failed too.
	Unexamined int
}

// Job is one job of a workflow run.
type Job struct {
	Name, Conclusion string
	FailedSteps      []string
	MoreSteps        int // failed steps past FailedSteps, not shown
}

// Set holds the parsed templates. It is safe for concurrent use.
type Set struct {
	dir    string
	logger *slog.Logger
	// checkEvery bounds how often Render looks at the override directory;
	// tests set it to zero.
	checkEvery time.Duration
	embedded   map[string]*template.Template
	limits     Limits

	mu        sync.Mutex
	current   map[string]*template.Template
	seen      map[string]fileStamp // override files as last looked at
	lastCheck time.Time
}

// fileStamp identifies a version of an override file. Size is compared too
// because a quick edit may keep the modification time on coarse clocks.
type fileStamp struct {
	mod  time.Time
	size int64
}

// New parses the embedded templates and the overrides in dir ("" for none).
// A template that fails to parse is an error naming its file; so is a
// missing dir. Overrides are checked again at most once a second by Render.
func New(dir string, logger *slog.Logger) (*Set, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Set{
		dir:        dir,
		logger:     logger,
		checkEvery: time.Second,
		embedded:   make(map[string]*template.Template),
		limits:     DefaultLimits(),
		current:    make(map[string]*template.Template),
		seen:       make(map[string]fileStamp),
	}
	names, err := fs.Glob(embedded, "templates/*"+ext)
	if err != nil {
		return nil, fmt.Errorf("list embedded prompts: %w", err)
	}
	for _, p := range names {
		b, err := embedded.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read embedded prompt %s: %w", p, err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ext)
		t, err := parse(name, b)
		if err != nil {
			return nil, fmt.Errorf("embedded prompt %s: %w", p, err)
		}
		s.embedded[name] = t
		s.current[name] = t
	}
	if dir == "" {
		return s, nil
	}
	if err := s.reload(true); err != nil {
		return nil, err
	}
	s.lastCheck = time.Now()
	return s, nil
}

// Render executes the named template ("issue.system") with data bounded by
// the Limits, and returns the result with surrounding blank space trimmed.
// A user template ("*.user") whose result passes the total cap, which only
// an override's own text can make it do, is rendered again with less room
// for comments, files and jobs; if even that passes the cap, it is an
// error.
func (s *Set) Render(name string, data any) (string, error) {
	t := s.lookup(name)
	if t == nil {
		return "", fmt.Errorf("prompt %q: no such template", name)
	}
	l := s.limits
	for range 4 {
		out, err := execute(t, l.bound(data))
		if err != nil {
			return "", fmt.Errorf("render prompt %s: %w", name, err)
		}
		over := len(out) - s.limits.Prompt
		if over <= 0 || !strings.HasSuffix(name, ".user") {
			return out, nil
		}
		l.Prompt -= over + l.Prompt/8
	}
	return "", fmt.Errorf("render prompt %s: over the cap of %d bytes even with its inputs cut; shorten the template", name, s.limits.Prompt)
}

func execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// Names lists the templates Render knows, sorted.
func (s *Set) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.current))
	for n := range s.current {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// lookup returns the current template called name, first picking up changed
// overrides if the last look is old enough. Templates are immutable once
// parsed, so the caller executes outside the lock.
func (s *Set) lookup(name string) *template.Template {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" && time.Since(s.lastCheck) >= s.checkEvery {
		s.lastCheck = time.Now()
		// Errors are logged in reload; serving the last good
		// templates beats failing every prompt.
		_ = s.reload(false)
	}
	return s.current[name]
}

// reload brings s.current up to date with the override directory. At start
// (strict) any problem is returned; later, a file that fails to parse is
// logged and its last good version kept. s.mu must be held, or s unshared.
func (s *Set) reload(strict bool) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		err = fmt.Errorf("prompts dir: %w", err)
		if !strict {
			s.logger.Error("cannot read prompt overrides; keeping current prompts", slog.String("dir", s.dir), slog.Any("err", err))
		}
		return err
	}
	present := make(map[string]bool)
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ext) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ext)
		path := filepath.Join(s.dir, e.Name())
		info, err := e.Info()
		if err != nil {
			continue // removed since ReadDir; the next look sees it gone
		}
		present[name] = true
		stamp := fileStamp{mod: info.ModTime(), size: info.Size()}
		if old, ok := s.seen[name]; ok && old == stamp {
			continue
		}
		// Remember the stamp even if parsing fails, so a broken file is
		// reported once, not every second.
		s.seen[name] = stamp
		b, err := os.ReadFile(path)
		if err == nil {
			var t *template.Template
			if t, err = parse(name, b); err == nil {
				if _, ok := s.embedded[name]; !ok {
					s.logger.Warn("prompt override has no built-in counterpart", slog.String("file", path))
				}
				s.current[name] = t
				if !strict {
					s.logger.Info("prompt reloaded", slog.String("file", path))
				}
				continue
			}
		}
		err = fmt.Errorf("prompt %s: %w", path, err)
		if strict {
			errs = append(errs, err)
			continue
		}
		s.logger.Error("prompt override rejected; keeping the last good version", slog.String("file", path), slog.Any("err", err))
	}
	// A deleted override falls back to the embedded template.
	for name := range s.seen {
		if present[name] {
			continue
		}
		delete(s.seen, name)
		if t, ok := s.embedded[name]; ok {
			s.current[name] = t
		} else {
			delete(s.current, name)
		}
		s.logger.Info("prompt override removed", slog.String("name", name))
	}
	return errors.Join(errs...)
}

func parse(name string, text []byte) (*template.Template, error) {
	return template.New(name + ext).Option("missingkey=error").Funcs(funcs).Parse(string(text))
}

// funcs are available to every template. It is read-only.
var funcs = template.FuncMap{
	"join":  strings.Join,
	"trim":  strings.TrimSpace,
	"fence": fence,
	"tag":   tag,
	"patch": patch,
	"count": count,
	// thousands formats a number with commas: 12,345.
	"thousands": thousands,
}

// fence returns a Markdown code fence longer than any run of backticks in
// s, so a patch or log that contains ``` cannot end the block early.
func fence(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// tag wraps untrusted text in <name>…</name> so the model can tell data
// from instructions: on one line when the text is one line, else with the
// tags on lines of their own. Closing tags of the same name inside the
// text are defused (see defuse), so the text cannot end the block early.
func tag(name, text string) string {
	text = strings.TrimSpace(defuse(name, text))
	if !strings.Contains(text, "\n") {
		return "<" + name + ">" + text + "</" + name + ">"
	}
	return "<" + name + ">\n" + text + "\n</" + name + ">"
}

// patch is a diff as data: fenced, and tagged as "patch".
func patch(diff string) string {
	f := fence(diff)
	return tag("patch", f+"diff\n"+diff+"\n"+f)
}

// defuse replaces the slash of every closing tag of name in text with a
// backslash: "</issue_body>" becomes "<\issue_body>". A closing tag is
// "<" (or the look-alikes ＜ and ﹤), optional space, "/" (or ／, ∕ and ⁄),
// optional space, then name in any case, as Unicode folds it. The text
// keeps its length (or shrinks, for a look-alike slash), so Limits can
// count it before any template runs.
func defuse(name, text string) string {
	var b strings.Builder
	done := 0 // text[:done] is in b
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if !isOpener(r) {
			i += n
			continue
		}
		j := skipSpace(text, i+n)
		s, sn := utf8.DecodeRuneInString(text[j:])
		if j == len(text) || !isSlash(s) || !hasFoldPrefix(text[skipSpace(text, j+sn):], name) {
			i += n
			continue
		}
		b.WriteString(text[done:j])
		b.WriteByte('\\')
		done = j + sn
		i = done
	}
	if done == 0 {
		return text
	}
	b.WriteString(text[done:])
	return b.String()
}

func isOpener(r rune) bool { return r == '<' || r == '\uFF1C' || r == '\uFE64' }
func isSlash(r rune) bool  { return r == '/' || r == '\uFF0F' || r == '\u2215' || r == '\u2044' }

// isSpace is white space as Unicode has it, separators included.
func isSpace(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Z, r) }

func skipSpace(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isSpace(r) {
			break
		}
		i += n
	}
	return i
}

// hasFoldPrefix reports whether s starts with prefix, ignoring case.
func hasFoldPrefix(s, prefix string) bool {
	for _, p := range prefix {
		r, n := utf8.DecodeRuneInString(s)
		if n == 0 || !foldEqual(p, r) {
			return false
		}
		s = s[n:]
	}
	return true
}

// foldEqual reports whether a and b are the same letter under Unicode's
// simple case folding (so K, k and the Kelvin sign are one letter).
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}
