package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNestedWithin(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"flat", `{"a":1}`, true},
		{"at the limit", deep(3), true},
		{"over the limit", deep(4), false},
		{"arrays count", `[[[[1]]]]`, false},
		{"siblings do not add up", `{"a":[1],"b":[2],"c":{"d":[3]}}`, true},
		{"brackets in strings do not count", `{"a":"[[[[{{{{"}`, true},
		{"escaped quote stays in the string", `{"a":"\"[[[[["}`, true},
		{"escaped backslash ends before the quote", `{"a":"\\"}` + `[[[[`, false},
		{"three backslashes escape the quote", `{"a":"\\\"[[[[["}`, true},
		{"unterminated string", `{"a":"[[[[[`, true},
		{"unbalanced closers", `]]]]]]{"a":[[[1]]]}`, true},
		{"empty", ``, true},
		{"only openers", `[[[[`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nestedWithin([]byte(tt.in), 3); got != tt.want {
				t.Errorf("nestedWithin(%q, 3) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// A string of escaped quotes after runs of backslashes, with brackets
// among them, is one string.
func TestNestedWithinEscapeRuns(t *testing.T) {
	t.Parallel()
	body := []byte(`{"a":"` + strings.Repeat(`\\\\\"[`, 1<<16) + `"}`)
	if !nestedWithin(body, 1) {
		t.Error("nestedWithin(escapes, 1) = false, want true")
	}
}

// FuzzNestedWithin checks the depth check against encoding/json's own
// (iterative) reading of valid JSON, and that nothing panics on the rest.
func FuzzNestedWithin(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"]"}]}`, `[[["\\"]]]`, `"\"[["`, `{"a":"\u005b"}`, `[]`, `[[[[[[`} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = max(0, min(limit, 1000))
		got := nestedWithin(b, limit)
		if !json.Valid(b) {
			return
		}
		if want := jsonDepth(t, b) <= limit; got != want {
			t.Errorf("nestedWithin(%q, %d) = %v, want %v (depth %d)", b, limit, got, want, jsonDepth(t, b))
		}
	})
}

// jsonDepth is the nesting depth of valid JSON b, read token by token.
func jsonDepth(t *testing.T, b []byte) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}
