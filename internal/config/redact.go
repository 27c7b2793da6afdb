package config

import (
	"net/url"
	"slices"
	"strings"
)

// passwordParams are the query parameters of a PostgreSQL URL that carry a
// credential (libpq and pgx read both).
var passwordParams = []string{"password", "sslpassword"}

// RedactURL returns s with the credentials in it replaced by "[redacted]":
// the password of its userinfo and the password query parameters. Every
// place that shows or logs a URL from the configuration (database_url,
// github.api_url, anthropic.base_url) goes through it. A string without a
// scheme, such as a SQLite path, is returned as it is; one that has a
// scheme but does not parse is reduced to its scheme, since where its
// password ends cannot be told.
func RedactURL(s string) string {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return scheme + "://" + redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for _, p := range passwordParams {
			if q.Has(p) {
				q.Set(p, redacted)
			}
		}
		u.RawQuery = q.Encode()
	}
	// url.URL.String escapes the brackets of the placeholder; show it as
	// written so that it reads as what it is.
	return strings.NewReplacer("%5Bredacted%5D", redacted).Replace(u.String())
}

// minScrubbed is the length below which a secret is not scrubbed from log
// lines and errors: a shorter value would blank ordinary words wherever
// they appear, and is no real secret anyway.
const minScrubbed = 8

// Redactor returns a function that replaces every configured secret value
// found in a string with "[redacted]": the webhook secrets, the GitHub token
// and App private key, the Anthropic key, the admin token, the alert
// webhook URL, and the database password (as written in the URL and
// decoded). A SQLite path is no secret and stays. cmd/hookwise passes
// every log attribute and the error it exits with through it, a last line
// of defence for a secret some error message carries (the typed Secret and
// RedactURL are the first). With nothing to scrub it returns its input.
func (c Config) Redactor() func(string) string {
	var values []string
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= minScrubbed && !slices.Contains(values, v) {
			values = append(values, v)
		}
	}
	for _, s := range c.GitHub.WebhookSecrets {
		add(s.Value())
	}
	for _, s := range []Secret{c.GitHub.Token, c.GitHub.AppPrivateKey, c.Anthropic.APIKey, c.AdminToken, c.Budget.AlertWebhook} {
		add(s.Value())
	}
	for _, p := range urlPasswords(c.DatabaseURL) {
		add(p)
	}
	if len(values) == 0 {
		return func(s string) string { return s }
	}
	// Longest first: where one value holds another, the whole is replaced.
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, redacted)
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

// urlPasswords returns the passwords in s, a URL, both decoded and as
// written (percent-encoded), since an error may quote either.
func urlPasswords(s string) []string {
	if !strings.Contains(s, "://") {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	var out []string
	if p, ok := u.User.Password(); ok {
		out = append(out, p)
		if _, raw, ok := strings.Cut(u.User.String(), ":"); ok {
			out = append(out, raw)
		}
	}
	q := u.Query()
	for _, name := range passwordParams {
		if p := q.Get(name); p != "" {
			out = append(out, p, url.QueryEscape(p))
		}
	}
	return out
}
