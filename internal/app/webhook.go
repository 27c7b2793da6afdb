package app

import (
	"net/netip"
	"slices"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/webhook"
)

// guardWebhook sets the webhook's per-client limits, trusted proxies and
// source allowlist from cfg, which Validate has checked.
func guardWebhook(opts *webhook.Options, cfg config.WebhookConfig) {
	opts.ClientBodyShare = cfg.ClientBodyShare
	opts.ClientMaxUnverified = cfg.ClientMaxUnverified
	opts.PenaltyFailures = cfg.PenaltyFailures
	if opts.PenaltyFailures == 0 {
		opts.PenaltyFailures = -1 // the webhook's "never"; its 0 is "default"
	}
	opts.PenaltyWindow = time.Duration(cfg.PenaltyWindow)
	opts.PenaltyDuration = time.Duration(cfg.PenaltyDuration)
	opts.TrustedProxies = prefixes(cfg.TrustedProxies)
	if len(cfg.AllowSources) > 0 {
		github := slices.Contains(cfg.AllowSources, config.AllowGitHub)
		fixed := prefixes(slices.DeleteFunc(slices.Clone(cfg.AllowSources), func(s string) bool { return s == config.AllowGitHub }))
		opts.Allow = webhook.NewAllowlist(fixed, github)
	}
}

// prefixes parses validated allow_sources or trusted_proxies entries.
func prefixes(entries []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range entries {
		if p, err := config.ParseSource(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
