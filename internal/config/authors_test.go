package config

import (
	"strings"
	"testing"
)

func TestAuthorLimitSettings(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, `
defaults:
  max_analyses_per_author: 4
repositories:
  - match: acme/open
    max_analyses_per_author: 0
  - match: acme/strict
    author_limit_exempt: []
`, nil)
	tests := []struct {
		repo   string
		most   int
		exempt []string
	}{
		{"acme/app", 4, []string{"OWNER", "MEMBER", "COLLABORATOR"}},
		{"acme/open", 0, []string{"OWNER", "MEMBER", "COLLABORATOR"}},
		{"acme/strict", 4, []string{}},
	}
	for _, tt := range tests {
		s := c.For(tt.repo)
		if s.MaxPerAuthor != tt.most || strings.Join(s.AuthorExempt, ",") != strings.Join(tt.exempt, ",") || s.AuthorExempt == nil {
			t.Errorf("For(%q) = max %d, exempt %q; want %d, %q", tt.repo, s.MaxPerAuthor, s.AuthorExempt, tt.most, tt.exempt)
		}
	}
}
