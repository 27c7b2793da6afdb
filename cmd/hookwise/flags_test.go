package main

import (
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/logtest"
)

// Each subcommand has its own flags: another command's flag, or one that
// does not exist, is an error that shows the command's usage; -h shows it
// and is no error.
func TestSubcommandFlags(t *testing.T) {
	t.Setenv("HOOKWISE_CONFIG", "")
	for _, args := range [][]string{
		{"serve", "--by", "repo"},
		{"demo", "--limit", "3"},
		{"version", "--keep"},
		{"migrate", "--dry-run"},
		{"healthcheck", "--all"},
		{"check-config", "--status", "done"},
		{"deliveries", "list", "--all"},
		{"deliveries", "show", "--limit", "3", "guid"},
		{"dlq", "list", "--all"},
		{"dlq", "discard", "--limit", "3", "guid"},
		{"redeliver", "--by", "day"},
		{"costs", "--dry-run"},
		{"replay", "--keep", "guid"},
		{"loadtest", "--nope"},
	} {
		var out, errOut logtest.Buffer
		err := run(args, &out, &errOut)
		if err == nil {
			t.Errorf("%v: no error, want the unknown flag refused", args)
			continue
		}
		if !strings.Contains(strings.ToLower(errOut.String()), "usage") {
			t.Errorf("%v: %v, and no usage on stderr:\n%s", args, err, errOut.String())
		}
	}
	var out, errOut logtest.Buffer
	if err := run([]string{"costs", "-h"}, &out, &errOut); err != nil || !strings.Contains(errOut.String(), "usage: hookwise costs") || !strings.Contains(errOut.String(), "-by") {
		t.Errorf("costs -h = %v, stderr %q; want its usage and flags, no error", err, errOut.String())
	}
	if err := run([]string{"replay", "a", "b"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), `unexpected argument "b"`) {
		t.Errorf("replay a b = %v, want the second argument refused", err)
	}
}
