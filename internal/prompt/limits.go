package prompt

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits caps what a prompt carries, so that what strangers write (a 1 MB
// comment, 5,000 labels, 3,000 jobs) costs a bounded number of tokens.
// Sizes are bytes of UTF-8, the unit of the total cap and of the cost
// estimate; a cut is made on a character boundary, and its note counts the
// characters cut. Counts keep the first items, except comments, where the
// newest are kept.
type Limits struct {
	Title    int // a title
	Body     int // an issue's or pull request's description
	Comment  int // one comment
	Comments int // comments shown, the newest
	Name     int // a login, branch, workflow, job, step or reviewer name
	Label    int // a label name
	Labels   int // labels shown in one list
	Path     int // a file name
	Files    int // files named, with or without their diff
	Patch    int // diff over all the files shown
	Jobs     int // failed jobs shown
	Steps    int // failed steps shown for one job
	// Prompt caps a rendered user prompt. Comments, files and jobs are
	// admitted while they fit under it, after the fields every prompt
	// carries in full (title, description, labels, names).
	Prompt int
}

// DefaultLimits are the caps hookwise uses. The fields every prompt carries
// in full take at most about 30,000 bytes of the 120,000 (a pull request's:
// title, description, 100 labels, branch and reviewer names), so the
// diff's 60,000 fit with 12,000 kept for the newest comments. A prompt at
// the cap is roughly 30,000 to 40,000 tokens.
func DefaultLimits() Limits {
	return Limits{
		Title:    1_024, // GitHub allows 256 characters
		Body:     16_000,
		Comment:  4_000,
		Comments: 20,
		Name:     256, // logins have at most 39 characters; git refs 255 bytes
		Label:    100, // GitHub allows 50 characters
		Labels:   100,
		Path:     512,
		Files:    200,
		Patch:    60_000,
		Jobs:     30,
		Steps:    10,
		Prompt:   120_000,
	}
}

const (
	// reserve is what Prompt keeps for a template's own text; the
	// embedded templates have under 2,000 bytes of it.
	reserve = 8_000
	// itemCost is what a template may add around each comment, file shown
	// or job (headings, tags, fences' newlines, numbers); listCost around
	// each label or file name in a list, stepCost around each step name.
	// TestItemCostsCoverTemplates holds the embedded templates to them.
	itemCost = 128
	listCost = 4
	stepCost = 24
	// commentRoom is kept for the newest comments while the files of a
	// pull request are admitted.
	commentRoom = 12_000
)

// budget is what is left of Prompt while data is bounded.
type budget struct{ left int }

// fits takes n bytes if they are left.
func (b *budget) fits(n int) bool {
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

// Issue returns d within l.
func (l Limits) Issue(d IssueData) IssueData {
	b := &budget{left: l.Prompt - reserve}
	d.Thread = l.thread(d.Thread, b)
	d.AllowedLabels, _ = l.labels(d.AllowedLabels)
	d.Thread = l.comments(d.Thread, b)
	return d
}

// PullRequest returns d within l. Files past the caps, and files without a
// textual diff, move to Omitted (by name) or, past the cap on names, are
// counted in MoreFiles.
func (l Limits) PullRequest(d PullRequestData) PullRequestData {
	b := &budget{left: l.Prompt - reserve}
	d.Thread = l.thread(d.Thread, b)
	d.AllowedLabels, _ = l.labels(d.AllowedLabels)
	d.Base, d.Head, d.Reviewer = line(d.Base, l.Name), line(d.Head, l.Name), line(d.Reviewer, l.Name)
	d.HeadSHA = keep(d.HeadSHA, isHex, 64)
	b.left -= len(d.Base) + len(d.Head) + len(d.Reviewer) + len(d.HeadSHA) + 3*itemCost
	room := min(commentRoom, l.commentsSize(d.Thread.Comments))
	files := &budget{left: b.left - room}
	l.files(&d, files)
	b.left = files.left + room
	d.Thread = l.comments(d.Thread, b)
	return d
}

// WorkflowRun returns d within l.
func (l Limits) WorkflowRun(d WorkflowRunData) WorkflowRunData {
	b := &budget{left: l.Prompt - reserve}
	d.Repo = keep(d.Repo, isRepoChar, 256)
	d.Name, d.Branch = line(d.Name, l.Name), line(d.Branch, l.Name)
	d.HeadSHA = keep(d.HeadSHA, isHex, 64)
	d.URL = runURL(d.URL)
	b.left -= len(d.Name) + len(d.Branch) + len(d.HeadSHA) + len(d.URL) + 4*itemCost
	jobs := make([]Job, 0, min(len(d.Jobs), l.Jobs))
	for i, j := range d.Jobs {
		j = l.job(j)
		size := len(j.Name) + len(j.Conclusion) + itemCost
		for _, s := range j.FailedSteps {
			size += len(s) + stepCost
		}
		if len(jobs) == l.Jobs || !b.fits(size) {
			d.MoreJobs += len(d.Jobs) - i
			break
		}
		jobs = append(jobs, j)
	}
	d.Jobs = jobs
	return d
}

// Repo returns d within l. Context is the operator's and is left whole.
func (l Limits) Repo(d RepoData) RepoData {
	d.Repo = keep(d.Repo, isRepoChar, 256)
	var more int
	d.AllowedLabels, more = l.labels(d.AllowedLabels)
	d.MoreLabels += more
	return d
}

// bound applies l to the data of a template, whichever it is.
func (l Limits) bound(data any) any {
	switch d := data.(type) {
	case IssueData:
		return l.Issue(d)
	case PullRequestData:
		return l.PullRequest(d)
	case WorkflowRunData:
		return l.WorkflowRun(d)
	case RepoData:
		return l.Repo(d)
	}
	return data
}

// thread bounds the fields every thread prompt carries in full and takes
// them from b; comments are bounded last, by comments.
func (l Limits) thread(th Thread, b *budget) Thread {
	th.Repo = keep(th.Repo, isRepoChar, 256)
	th.Title = line(th.Title, l.Title)
	th.Author = line(th.Author, l.Name)
	th.Body = text(th.Body, l.Body)
	var more int
	th.Labels, more = l.labels(th.Labels)
	th.MoreLabels += more
	b.left -= len(th.Title) + len(th.Author) + len(th.Body) + 3*itemCost
	for _, s := range th.Labels {
		b.left -= len(s) + listCost
	}
	return th
}

// comments keeps the newest comments that fit in count and in b; the
// oldest one kept may be cut to fit. The rest are counted as earlier.
func (l Limits) comments(th Thread, b *budget) Thread {
	kept := make([]Comment, 0, min(len(th.Comments), l.Comments))
	for i := len(th.Comments) - 1; i >= 0 && len(kept) < l.Comments; i-- {
		c := Comment{Author: line(th.Comments[i].Author, l.Name), Body: text(th.Comments[i].Body, l.Comment)}
		fixed := len(c.Author) + itemCost
		if !b.fits(fixed + len(c.Body)) {
			// Cut to what is left, when that is enough to be of use.
			if room := b.left - fixed; room >= 400 {
				c.Body = cut(c.Body, room)
				b.left -= fixed + len(c.Body)
				kept = append(kept, c)
			}
			break
		}
		kept = append(kept, c)
	}
	th.EarlierComments += len(th.Comments) - len(kept)
	slices.Reverse(kept)
	th.Comments = kept
	return th
}

// commentsSize is the most the comments can take once bounded.
func (l Limits) commentsSize(cs []Comment) int {
	n := 0
	for _, c := range cs[max(0, len(cs)-l.Comments):] {
		n += min(len(c.Author), l.Name) + min(len(c.Body), l.Comment) + itemCost
	}
	return n
}

// labels keeps the first labels within the caps, dropping empty ones, and
// returns how many more there were.
func (l Limits) labels(in []string) ([]string, int) {
	if in == nil {
		return nil, 0
	}
	out := make([]string, 0, min(len(in), l.Labels))
	for i, s := range in {
		if len(out) == l.Labels {
			return out, len(in) - i
		}
		if s = line(s, l.Label); s != "" {
			out = append(out, s)
		}
	}
	return out, 0
}

// files keeps, in order, the files whose diff fits in the patch budget and
// in b, and names the others in Omitted while names fit; the rest are
// counted in MoreFiles. Files already omitted keep their place after the
// files shown.
func (l Limits) files(d *PullRequestData, b *budget) {
	var shown []File
	var omitted []string
	named, full := 0, false
	patchLeft := l.Patch
	// name admits a file's name to the prompt; a name left empty once
	// cleaned is counted with the files not listed.
	name := func(n string) bool {
		switch {
		case n == "":
		case full || named == l.Files || !b.fits(len(n)+listCost):
			full = true
		default:
			named++
			return true
		}
		d.MoreFiles++
		return false
	}
	for i, f := range d.Files {
		if full || named == l.Files {
			d.MoreFiles += len(d.Files) - i
			break
		}
		f.Name, f.Status = line(f.Name, l.Path), keep(f.Status, isWord, 32)
		if !name(f.Name) {
			continue
		}
		// A diff is judged by its size as GitHub sent it, and cleaned
		// only when it may be shown.
		if f.Patch != "" && len(f.Patch) <= patchLeft {
			f.Patch = clean(f.Patch)
			fl := len(fence(f.Patch))
			if f.Patch != "" && len(f.Patch) <= patchLeft && b.fits(len(f.Patch)+2*fl+len(f.Status)+itemCost) {
				patchLeft -= len(f.Patch)
				shown = append(shown, f)
				continue
			}
		}
		omitted = append(omitted, f.Name)
	}
	for i, n := range d.Omitted {
		if full || named == l.Files {
			d.MoreFiles += len(d.Omitted) - i
			break
		}
		if n = line(n, l.Path); name(n) {
			omitted = append(omitted, n)
		}
	}
	d.Files, d.Omitted = shown, omitted
}

// job bounds one job's names and its failed steps.
func (l Limits) job(j Job) Job {
	j.Name, j.Conclusion = line(j.Name, l.Name), keep(j.Conclusion, isWord, 32)
	if len(j.FailedSteps) > l.Steps {
		j.MoreSteps += len(j.FailedSteps) - l.Steps
		j.FailedSteps = j.FailedSteps[:l.Steps]
	}
	steps := make([]string, 0, len(j.FailedSteps))
	for _, s := range j.FailedSteps {
		steps = append(steps, line(s, l.Name))
	}
	if j.FailedSteps != nil {
		j.FailedSteps = steps
	}
	return j
}

// text is s made safe to show and cut to at most max bytes: valid UTF-8,
// line breaks as "\n", and no control or invisible characters (zero-width
// spaces, bidi overrides, tag characters, variation selectors), which
// could hide a closing tag from the escaping in tag, or carry text the
// model reads and people do not see. It stops once past max: a 1 MB
// comment costs a count of its characters, not a copy.
func text(s string, max int) string { return fit(s, max, false) }

// line is text for a field of one line: its line breaks and tabs become
// spaces, and surrounding space goes.
func line(s string, max int) string { return fit(s, max, true) }

// clean is text without a cap, for diffs, which are admitted or left out
// whole.
func clean(s string) string {
	if isPlain(s) {
		return s
	}
	return fit(s, math.MaxInt, false)
}

func fit(s string, max int, oneLine bool) string {
	var b strings.Builder
	i, invalid := 0, false
	for i < len(s) && b.Len() <= max {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if r == utf8.RuneError && n == 1 {
			// A run of bytes that are not UTF-8 shows as one U+FFFD.
			if !invalid {
				b.WriteRune(r)
			}
			invalid = true
			continue
		}
		invalid = false
		switch {
		case r == '\r' && i < len(s) && s[i] == '\n':
			continue
		case r == '\r' || r == '\u2028' || r == '\u2029' || r == '\u0085':
			r = '\n'
		case r == '\n' || r == '\t':
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r):
			continue
		}
		if oneLine && (r == '\n' || r == '\t') {
			r = ' '
		}
		if oneLine && b.Len() == 0 && unicode.IsSpace(r) {
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	if i == len(s) {
		if oneLine {
			out = strings.TrimRightFunc(out, unicode.IsSpace)
		}
		if len(out) <= max {
			return out
		}
	}
	return cutRest(out, s[i:], max)
}

// isPlain reports whether s is printable ASCII with newlines and tabs,
// which clean leaves alone.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// cut returns s if it has at most max bytes, else its start, on a
// character boundary, followed by a note saying how many characters were
// cut, within max bytes in all. Cutting what cut returned changes nothing.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return cutRest(s, "", max)
}

// cutRest cuts s followed by rest, which is not cleaned yet and is all cut:
// its characters are only counted.
func cutRest(s, rest string, max int) string {
	more := utf8.RuneCountInString(rest)
	// The note's length depends on the count it shows; the count of the
	// whole text bounds it.
	room := max - len(cutNote(utf8.RuneCountInString(s)+more))
	if room <= 0 {
		return s[:boundary(s, max)]
	}
	head := s[:boundary(s, room)]
	return head + cutNote(utf8.RuneCountInString(s[len(head):])+more)
}

func cutNote(n int) string { return " [… " + thousands(n) + " characters cut]" }

// boundary is the largest i <= n at which s can be cut without splitting
// a character.
func boundary(s string, n int) int {
	n = min(n, len(s))
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// keep returns the characters ok accepts among the first bytes of s, at
// most max of them (all ASCII), for fields GitHub restricts (repository
// names, SHAs, conclusions): a hostile value cannot put anything else
// outside a tag.
func keep(s string, ok func(rune) bool, max int) string {
	var b strings.Builder
	for _, r := range s[:min(len(s), 4*max)] {
		if ok(r) && b.Len() < max {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isHex(r rune) bool  { return '0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F' }
func isWord(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '_' }
func isRepoChar(r rune) bool {
	return isWord(r) || '0' <= r && r <= '9' || r == '-' || r == '.' || r == '/'
}

// runURL keeps a run's page address only when it is a plain https URL.
func runURL(s string) string {
	ok := func(r rune) bool {
		return isRepoChar(r) || strings.ContainsRune(":?#=&%~+", r)
	}
	if len(s) > 512 || !strings.HasPrefix(s, "https://") || keep(s, ok, len(s)) != s {
		return ""
	}
	return s
}

// thousands formats n with commas: 12,345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// count says "1 earlier comment" or "2,345 earlier comments".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%s %ss", thousands(n), noun)
}
