package pipeline_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
	"github.com/hookwise/hookwise/internal/store"
)

// withInstallation adds an App installation to a payload, as GitHub does for
// an App's deliveries.
func withInstallation(t *testing.T, payload []byte, installation any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["installation"] = map[string]any{"id": installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Deliveries from owners and App installations outside the allowlist are
// skipped as not_allowed before anything is asked of GitHub or the model.
func TestAllowlist(t *testing.T) {
	t.Parallel()
	issue := func(repo string) []byte {
		return fake.IssueEvent("opened", repo, 1, "Crash on save", "Saving a file with a long name crashes.", "alice")
	}
	tests := []struct {
		name          string
		owners        []string
		installations []int64
		payload       func(t *testing.T) []byte
		wantSkip      string // "" when served
	}{
		{name: "owner listed", owners: []string{"acme"},
			payload: func(t *testing.T) []byte { return issue("acme/app") }},
		{name: "owner listed in another case", owners: []string{"ACME"},
			payload: func(t *testing.T) []byte { return issue("acme/app") }},
		{name: "every owner", owners: []string{"*"},
			payload: func(t *testing.T) []byte { return withInstallation(t, issue("stranger/app"), 99) }},
		{name: "installation listed", installations: []int64{42},
			payload: func(t *testing.T) []byte { return withInstallation(t, issue("acme/app"), 42) }},
		{name: "foreign installation", installations: []int64{42},
			payload:  func(t *testing.T) []byte { return withInstallation(t, issue("stranger/app"), 99) },
			wantSkip: `not_allowed: owner "stranger", installation 99: not in github.allowed_owners or github.allowed_installations`},
		{name: "foreign installation of a listed owner's namesake", owners: []string{"acme"}, installations: []int64{42},
			payload:  func(t *testing.T) []byte { return withInstallation(t, issue("acme-evil/app"), 99) },
			wantSkip: `not_allowed: owner "acme-evil", installation 99`},
		{name: "owner not listed, no installation", owners: []string{"acme"},
			payload:  func(t *testing.T) []byte { return issue("stranger/app") },
			wantSkip: `not_allowed: owner "stranger" is not in github.allowed_owners`},
		{name: "installation id of the wrong type", installations: []int64{42},
			payload:  func(t *testing.T) []byte { return withInstallation(t, issue("acme/app"), "42") },
			wantSkip: "bad_payload"},
		{name: "no installation where only installations are listed", installations: []int64{42},
			payload:  func(t *testing.T) []byte { return issue("acme/app") },
			wantSkip: `not_allowed: owner "acme" is not in github.allowed_owners`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.GitHub.AllowedOwners, cfg.GitHub.AllowedInstallations = tt.owners, tt.installations
			h := newHarness(t, cfg, issueAnswer([]string{"bug"}, false, ""))
			id := h.process(t, "issues", tt.payload(t))
			if tt.wantSkip == "" {
				h.wantStatus(t, id, store.StatusDone)
				if got := h.model.Calls(); got != 1 {
					t.Errorf("model calls = %d, want 1", got)
				}
				return
			}
			d := h.wantStatus(t, id, store.StatusSkipped)
			if !strings.HasPrefix(d.Reason, tt.wantSkip) {
				t.Errorf("skip reason = %q, want %q", d.Reason, tt.wantSkip)
			}
			if got := h.model.Calls(); got != 0 {
				t.Errorf("model calls = %d, want 0", got)
			}
			if requests, _ := h.github.Stats(); requests != 0 {
				t.Errorf("GitHub requests = %d, want 0", requests)
			}
		})
	}
}
