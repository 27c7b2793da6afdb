package claude

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// salvage turns a JSON object cut short at max_tokens into a whole one: it
// keeps every member and array item that was complete, and a string value
// cut in its middle, closes what was left open, and adds "truncated": true
// so that whoever shows the answer can say it is incomplete. ok is false
// when the text does not start a JSON object. A long answer (a review of a
// large change, or an answer steered into rambling by the text it read)
// then still ends in a comment, instead of a delivery that fails for good.
func salvage(text string) (json.RawMessage, bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "{") {
		return nil, false
	}
	cut := cutPoint(text)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(cut), &obj); err != nil || obj == nil {
		return nil, false
	}
	obj["truncated"] = json.RawMessage("true")
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, false
	}
	return out, true
}

// jsonScan is the state of a scan over JSON text.
type jsonScan struct {
	open      []byte // open containers, '{' or '['
	inString  bool
	escaped   bool
	isKey     bool // the string being read is an object's key
	expectKey bool // in an object, the next string is a key
	// safe is the longest prefix known to end after a complete value, and
	// safeOpen what was open there.
	safe     int
	safeOpen string
}

// cutPoint returns the longest prefix of text that ends a value, or cuts
// a string value, with its open string and containers closed.
func cutPoint(text string) string {
	s := jsonScan{safe: -1}
	for i := 0; i < len(text); i++ {
		s.step(text, i)
	}
	if s.inString && !s.isKey {
		return stringPrefix(text) + `"` + closers(string(s.open))
	}
	if s.safe < 0 {
		return "{}"
	}
	return text[:s.safe] + closers(s.safeOpen)
}

func (s *jsonScan) step(text string, i int) {
	c := text[i]
	if s.inString {
		switch {
		case s.escaped:
			s.escaped = false
		case c == '\\':
			s.escaped = true
		case c == '"':
			s.inString = false
			if !s.isKey {
				s.mark(i + 1)
			}
		}
		return
	}
	switch c {
	case '{', '[':
		s.open = append(s.open, c)
		s.expectKey = c == '{'
	case '}', ']':
		if len(s.open) > 0 {
			s.open = s.open[:len(s.open)-1]
		}
		s.mark(i + 1)
	case '"':
		s.inString, s.escaped = true, false
		s.isKey = s.expectKey && len(s.open) > 0 && s.open[len(s.open)-1] == '{'
	case ':':
		s.expectKey = false
	case ',':
		s.mark(i) // a comma always follows a complete value
		s.expectKey = len(s.open) > 0 && s.open[len(s.open)-1] == '{'
	}
}

func (s *jsonScan) mark(at int) {
	if len(s.open) > 0 {
		s.safe, s.safeOpen = at, string(s.open)
	}
}

// stringPrefix is text without an escape sequence or a UTF-8 sequence cut
// at its end.
func stringPrefix(text string) string {
	if i := strings.LastIndexByte(text, '\\'); i >= 0 && len(text)-i < 6 {
		backslashes := 0
		for j := i; j >= 0 && text[j] == '\\'; j-- {
			backslashes++
		}
		rest := text[i+1:]
		if backslashes%2 == 1 && (rest == "" || rest[0] == 'u' && len(rest) < 5) {
			text = text[:i]
		}
	}
	for range utf8.UTFMax - 1 {
		if r, size := utf8.DecodeLastRuneInString(text); r != utf8.RuneError || size != 1 {
			break
		}
		text = text[:len(text)-1]
	}
	return text
}

func closers(open string) string {
	var b strings.Builder
	for i := len(open) - 1; i >= 0; i-- {
		if open[i] == '{' {
			b.WriteByte('}')
		} else {
			b.WriteByte(']')
		}
	}
	return b.String()
}
