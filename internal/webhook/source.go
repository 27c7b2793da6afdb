package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// maxHops bounds the X-Forwarded-For entries looked at for one request: a
// chain of trusted proxies is short, and a longer header costs no more.
const maxHops = 32

// clientAddr returns the address r comes from: its peer, or, when the peer
// is a trusted proxy, the right-most address in X-Forwarded-For that is not
// one. Entries left of that are whatever the client chose to send. The
// invalid Addr stands for a peer that is not an IP address.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, _ := parseHop(r.RemoteAddr)
	if !contains(trusted, peer) {
		return peer
	}
	client, hops := peer, 0
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for rest != "" {
			hop := rest
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				hop, rest = rest[j+1:], rest[:j]
			} else {
				rest = ""
			}
			if strings.TrimSpace(hop) == "" {
				continue
			}
			a, ok := parseHop(hop)
			if hops++; !ok || hops > maxHops {
				// A proxy we trust wrote nothing like this: the hop
				// that handed it over is the last address we know.
				return client
			}
			client = a
			if !contains(trusted, a) {
				return a
			}
		}
	}
	return client
}

// parseHop reads one address as proxies write it: "192.0.2.1",
// "192.0.2.1:443", "2001:db8::1" or "[2001:db8::1]:443". IPv4-mapped IPv6
// addresses become IPv4, and zones are dropped.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// clientKey is the address fairness counts a client by: an IPv4 address,
// or the /64 an IPv6 address is in (one host usually holds a whole /64).
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// HookRanger lists the address ranges GitHub sends webhooks from (the
// "hooks" field of GET /meta).
type HookRanger interface {
	HookRanges(ctx context.Context) ([]string, error)
}

// Allowlist holds the sources that may deliver: fixed prefixes and, when
// it follows GitHub, the hook ranges GitHub publishes. It is safe for
// concurrent use.
type Allowlist struct {
	fixed  []netip.Prefix
	github bool
	// hooks is GitHub's last good list; nil until one is loaded.
	hooks atomic.Pointer[[]netip.Prefix]
}

// NewAllowlist returns an Allowlist of fixed, and of GitHub's hook ranges
// if github is set. Until those ranges are first loaded the GitHub part
// admits every source: a delivery refused is lost, while one admitted must
// still carry a valid signature.
func NewAllowlist(fixed []netip.Prefix, github bool) *Allowlist {
	return &Allowlist{fixed: fixed, github: github}
}

// FollowsGitHub reports whether the list includes GitHub's hook ranges.
func (a *Allowlist) FollowsGitHub() bool { return a.github }

// Allows reports whether a request from addr may deliver.
func (a *Allowlist) Allows(addr netip.Addr) bool {
	if contains(a.fixed, addr) {
		return true
	}
	if !a.github {
		return false
	}
	hooks := a.hooks.Load()
	return hooks == nil || contains(*hooks, addr)
}

// hookRanges is how many GitHub hook ranges are loaded (0: none yet).
func (a *Allowlist) hookRanges() int {
	if h := a.hooks.Load(); h != nil {
		return len(*h)
	}
	return 0
}

// Load fetches GitHub's hook ranges once. On any failure, an empty list
// included, the last good list stays.
func (a *Allowlist) Load(ctx context.Context, src HookRanger) (int, error) {
	raw, err := src.HookRanges(ctx)
	if err != nil {
		return 0, fmt.Errorf("hook ranges: %w", err)
	}
	if len(raw) == 0 {
		return 0, errors.New("hook ranges: GitHub listed none")
	}
	hooks := make([]netip.Prefix, 0, len(raw))
	for _, s := range raw {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return 0, fmt.Errorf("hook ranges: %q is not a CIDR", s)
		}
		hooks = append(hooks, p.Masked())
	}
	a.hooks.Store(&hooks)
	return len(hooks), nil
}

// Follow loads GitHub's hook ranges at once and then every interval until
// ctx ends; after a failure it tries again within a minute, keeping the
// last good list meanwhile.
func (a *Allowlist) Follow(ctx context.Context, src HookRanger, every time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		wait := every
		n, err := a.Load(ctx, src)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = min(every, time.Minute)
			log.Warn("webhook allowlist: keeping the last GitHub hook ranges", "ranges", a.hookRanges(), "retry_in", wait.String(), "err", err)
		default:
			log.Debug("webhook allowlist: GitHub hook ranges loaded", "ranges", n)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
