package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version describes this build: the module version (a tag, a
// pseudo-version naming the commit, or "(devel)"), the commit it was built
// from unless the version names it, "+dirty" when the tree had changes, the
// commit's time, and the Go version.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "hookwise (no build information)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hookwise %s", info.Main.Version)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		// Go derives a pseudo-version that names the commit from the
		// repository; an untagged "(devel)" build does not.
		if short := rev[:min(12, len(rev))]; !strings.Contains(info.Main.Version, short) {
			fmt.Fprintf(&b, " %s", short)
			if settings["vcs.modified"] == "true" {
				b.WriteString("+dirty")
			}
		}
		if at := settings["vcs.time"]; at != "" {
			fmt.Fprintf(&b, " (%s)", at)
		}
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	return b.String()
}
