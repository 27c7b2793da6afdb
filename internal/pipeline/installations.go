package pipeline

import (
	"slices"
	"strings"

	"github.com/hookwise/hookwise/internal/config"
)

// notAllowed says why a delivery from an owner or App installation outside
// github.allowed_owners and github.allowed_installations gets nothing (no
// model call, no GitHub call), or returns nil when it is served. Both lists
// empty serve everyone; configuration refuses that in App mode.
func notAllowed(owners []string, ids []int64, ev *event) *skip {
	if len(owners) == 0 && len(ids) == 0 {
		return nil
	}
	owner, id := ev.Repository.Owner.Login, ev.Installation.ID
	if slices.Contains(owners, config.AllOwners) ||
		slices.ContainsFunc(owners, func(o string) bool { return strings.EqualFold(o, owner) }) ||
		id != 0 && slices.Contains(ids, id) {
		return nil
	}
	if id != 0 {
		return skipf("not_allowed", "owner %q, installation %d: not in github.allowed_owners or github.allowed_installations", owner, id)
	}
	return skipf("not_allowed", "owner %q is not in github.allowed_owners", owner)
}
