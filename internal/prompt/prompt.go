// Package prompt renders the prompts hookwise sends to Claude. Templates are
// text/template files embedded in the binary; an operator may override any
// of them file by file from a directory, and edits there take effect without
// a restart.
//
// Each kind of work has a "system" template (stable instructions, identical
// for every event so the provider can cache it) and a "user" template (this
// event). System templates are rendered with the same data but should not
// use it: anything event-specific there defeats prompt caching.
package prompt

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
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
	Thread        Thread
	Base, Head    string // branch names
	HeadSHA       string
	Files         []File
	Omitted       []string // files changed but not shown (size limits, binaries)
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
	Schema        string // the answer's JSON schema, indented
}

// WorkflowRunData is the data of the workflow_run.* templates.
type WorkflowRunData struct {
	Repo, Name, Branch, HeadSHA, URL string
	Jobs                             []Job // failed jobs
}

// Job is one job of a workflow run.
type Job struct {
	Name, Conclusion string
	FailedSteps      []string
}

// Set holds the parsed templates. It is safe for concurrent use.
type Set struct {
	dir    string
	logger *slog.Logger
	// checkEvery bounds how often Render looks at the override directory;
	// tests set it to zero.
	checkEvery time.Duration
	embedded   map[string]*template.Template

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

// Render executes the named template ("issue.system") with data and returns
// the result with surrounding blank space trimmed.
func (s *Set) Render(name string, data any) (string, error) {
	t := s.lookup(name)
	if t == nil {
		return "", fmt.Errorf("prompt %q: no such template", name)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("render prompt %s: %w", name, err)
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
			s.logger.Error("cannot read prompt overrides; keeping current prompts", slog.String("dir", s.dir), slog.Any("error", err))
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
		s.logger.Error("prompt override rejected; keeping the last good version", slog.String("file", path), slog.Any("error", err))
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

// tag wraps untrusted text (titles, bodies, comments) in <name>…</name> so
// the model can tell data from instructions. Closing tags of the same name
// inside the text are defused so the text cannot end the block early.
func tag(name, text string) string {
	closing := regexp.MustCompile(`(?i)</\s*` + regexp.QuoteMeta(name))
	text = closing.ReplaceAllString(text, `<\/`+name)
	return "<" + name + ">\n" + strings.TrimSpace(text) + "\n</" + name + ">"
}
