package claude

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookwise/hookwise/internal/fake"
)

func TestSalvage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     string // "" when nothing can be salvaged
	}{
		{"cut in a string value", `{"summary":"The loop never ends bec`, `{"summary":"The loop never ends bec","truncated":true}`},
		{"cut in a key", `{"summary":"ok","ris`, `{"summary":"ok","truncated":true}`},
		{"cut after a colon", `{"summary":"ok","risk":`, `{"summary":"ok","truncated":true}`},
		{"cut in a literal", `{"summary":"ok","flaky":tr`, `{"summary":"ok","truncated":true}`},
		{"cut in an array item", `{"plan":["one","tw`, `{"plan":["one","tw"],"truncated":true}`},
		{"cut in a nested object", `{"findings":[{"file":"a.go","line":3},{"file":"b.go","li`,
			`{"findings":[{"file":"a.go","line":3},{"file":"b.go"}],"truncated":true}`},
		{"cut in an escape", `{"summary":"a\u00`, `{"summary":"a","truncated":true}`},
		{"cut after an escaped quote", `{"summary":"say \"hi\" to`, `{"summary":"say \"hi\" to","truncated":true}`},
		{"only the brace", `{`, `{"truncated":true}`},
		{"prose", `I think this is a bug`, ``},
		{"array", `["bug"`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := salvage(tt.in)
			if tt.want == "" {
				if ok {
					t.Errorf("salvage(%q) = %s, want nothing", tt.in, got)
				}
				return
			}
			if !ok || string(got) != tt.want {
				t.Errorf("salvage(%q) = %s, %v; want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestSalvageCutsMultiByteText(t *testing.T) {
	t.Parallel()
	whole := `{"summary":"` + strings.Repeat("é😀", 50) + `"}`
	for cut := 12; cut < len(whole); cut++ {
		got, ok := salvage(whole[:cut])
		if !ok || !utf8.Valid(got) || !json.Valid(got) {
			t.Fatalf("salvage(first %d bytes) = %q, %v; want a valid JSON object", cut, got, ok)
		}
	}
}

func TestCompleteSalvagesAnswerCutAtMaxTokens(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("The handler holds the lock while it writes. ", 40)
	c, _, _ := newTestClient(t, fake.AnthropicOptions{
		Respond: func(fake.AnthropicRequest) (any, error) {
			return map[string]any{"summary": long, "risk": "high"}, nil
		},
	}, Options{})
	req := testRequest("s", "p")
	req.MaxTokens = 64
	res, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatalf("Complete() = %v, want the salvaged answer", err)
	}
	var got struct {
		Summary   string `json:"summary"`
		Risk      string `json:"risk"`
		Truncated bool   `json:"truncated"`
	}
	if err := json.Unmarshal(res.JSON, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Truncated || got.Summary == "" || !strings.HasPrefix(long, got.Summary) || got.Summary == long {
		t.Errorf("Complete() = %+v, want the start of the summary, truncated", got)
	}
	if res.StopReason != "max_tokens" {
		t.Errorf("StopReason = %q, want max_tokens", res.StopReason)
	}
}

func FuzzSalvage(f *testing.F) {
	for _, s := range []string{`{"a":"b`, `{"a":[1,2,{"b":"c\`, `{"a":"\u12`, `{"x":tru`, `{}`, `{"a":"b"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got, ok := salvage(text)
		if !ok {
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(got, &obj); err != nil || obj["truncated"] != true {
			t.Fatalf("salvage(%q) = %s: not an object marked truncated (%v)", text, got, err)
		}
	})
}
