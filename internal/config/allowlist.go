package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// AllOwners in github.allowed_owners serves every owner.
const AllOwners = "*"

// loginRE is an account login as GitHub allows them (letters, digits and
// hyphens; managed users add an underscore and a short code).
var loginRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)

// allowlistFromEnv reads GITHUB_ALLOWED_OWNERS and
// GITHUB_ALLOWED_INSTALLATIONS, each a comma-separated list.
func (g *GitHubConfig) allowlistFromEnv(env map[string]string) []error {
	if v := env["GITHUB_ALLOWED_OWNERS"]; v != "" {
		g.AllowedOwners = splitList(v)
	}
	v := env["GITHUB_ALLOWED_INSTALLATIONS"]
	if v == "" {
		return nil
	}
	var ids []int64
	for _, s := range splitList(v) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return []error{fmt.Errorf("GITHUB_ALLOWED_INSTALLATIONS: want installation ids separated by commas, got %q", v)}
		}
		ids = append(ids, id)
	}
	g.AllowedInstallations = ids
	return nil
}

func splitList(v string) []string {
	var out []string
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// validateAllowlist checks the entries of both lists.
func (g GitHubConfig) validateAllowlist() []error {
	var errs []error
	for i, o := range g.AllowedOwners {
		key := fmt.Sprintf("github.allowed_owners[%d]", i)
		switch {
		case o == AllOwners && len(g.AllowedOwners) > 1:
			errs = append(errs, fmt.Errorf(`%s: "*" serves every owner: list it alone`, key))
		case o == AllOwners:
		case strings.Contains(o, "/"):
			errs = append(errs, fmt.Errorf(`%s: want an account login such as "acme", not a repository, got %q`, key, o))
		case !loginRE.MatchString(o):
			errs = append(errs, fmt.Errorf(`%s: want an account login such as "acme", or "*", got %q`, key, o))
		}
	}
	for i, id := range g.AllowedInstallations {
		if id <= 0 {
			errs = append(errs, fmt.Errorf("github.allowed_installations[%d]: want an installation id above 0, got %d", i, id))
		}
	}
	return errs
}

// allowlistForServe requires an allowlist of a GitHub App. Anyone can
// install a public App, and every installation's deliveries are signed
// with the App's one webhook secret: without a list, a stranger who
// installs it spends this hookwise's model budget and GitHub quota on
// their own repositories. "*" says that is intended.
func (g GitHubConfig) allowlistForServe() error {
	switch {
	case g.AppID != 0 && len(g.AllowedOwners) == 0 && len(g.AllowedInstallations) == 0:
		return errors.New(`github.allowed_owners: GITHUB_APP_ID is set, and anyone who installs the App would be served: ` +
			`list the account logins to serve (GITHUB_ALLOWED_OWNERS), or their installation ids in ` +
			`github.allowed_installations (GITHUB_ALLOWED_INSTALLATIONS), or "*" to serve every installation`)
	case g.AppID == 0 && len(g.AllowedInstallations) > 0:
		return errors.New("github.allowed_installations: installations belong to a GitHub App, and GITHUB_APP_ID is not set: " +
			"with GITHUB_TOKEN, list owners in github.allowed_owners")
	}
	return nil
}
