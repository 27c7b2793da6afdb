package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	proxies := prefixes(t, "10.0.0.0/8", "fd00::/8")
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"direct", "203.0.113.7:5000", nil, proxies, "203.0.113.7"},
		{"no trusted proxies: header ignored", "10.0.0.1:5000", []string{"203.0.113.7"}, nil, "10.0.0.1"},
		{"untrusted peer: header ignored", "198.51.100.1:5000", []string{"203.0.113.7"}, proxies, "198.51.100.1"},
		{"one proxy", "10.0.0.1:5000", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"spoofed entries left of the client", "10.0.0.1:5000", []string{"1.2.3.4, 5.6.7.8, 203.0.113.7"}, proxies, "203.0.113.7"},
		{"chain of proxies", "10.0.0.1:5000", []string{"203.0.113.7, 10.1.1.1, 10.2.2.2"}, proxies, "203.0.113.7"},
		{"several header lines", "10.0.0.1:5000", []string{"1.2.3.4", "203.0.113.7, 10.1.1.1"}, proxies, "203.0.113.7"},
		{"empty entries skipped", "10.0.0.1:5000", []string{"203.0.113.7, ,"}, proxies, "203.0.113.7"},
		{"only proxies: the left-most", "10.0.0.1:5000", []string{"10.9.9.9, 10.1.1.1"}, proxies, "10.9.9.9"},
		{"garbage from the proxy: the proxy", "10.0.0.1:5000", []string{"unknown"}, proxies, "10.0.0.1"},
		{"garbage left of a proxy: that proxy", "10.0.0.1:5000", []string{"203.0.113.7, not-an-ip, 10.1.1.1"}, proxies, "10.1.1.1"},
		{"address with port", "10.0.0.1:5000", []string{"203.0.113.7:4711"}, proxies, "203.0.113.7"},
		{"IPv6 in brackets with port", "[fd00::1]:5000", []string{"[2001:db8::7]:4711"}, proxies, "2001:db8::7"},
		{"IPv6", "[fd00::1]:5000", []string{"2001:db8::7"}, proxies, "2001:db8::7"},
		{"IPv4-mapped peer", "[::ffff:10.0.0.1]:5000", []string{"203.0.113.7"}, proxies, "203.0.113.7"},
		{"peer not an address", "@", []string{"203.0.113.7"}, proxies, "invalid IP"},
		{"too many hops", "10.0.0.1:5000", []string{"203.0.113.7" + strings.Repeat(", 10.1.1.1", 40)}, proxies, "10.1.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted).String(); got != tt.want {
				t.Errorf("clientAddr(%s, X-Forwarded-For %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"203.0.113.7":              "203.0.113.7",
		"2001:db8:1:2:aaaa::1":     "2001:db8:1:2::",
		"2001:db8:1:2:ffff:ffff::": "2001:db8:1:2::",
		"2001:db8:1:3::1":          "2001:db8:1:3::",
	} {
		if got := clientKey(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// hookRanges is a HookRanger answering from a list, or failing.
type hookRanges struct {
	ranges []string
	err    error
}

func (h *hookRanges) HookRanges(context.Context) ([]string, error) { return h.ranges, h.err }

func TestAllowlist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	github, office, stranger := netip.MustParseAddr("192.30.252.9"), netip.MustParseAddr("198.51.100.4"), netip.MustParseAddr("203.0.113.7")
	check := func(t *testing.T, a *Allowlist, want map[netip.Addr]bool) {
		t.Helper()
		for addr, ok := range want {
			if got := a.Allows(addr); got != ok {
				t.Errorf("Allows(%s) = %v, want %v", addr, got, ok)
			}
		}
	}

	t.Run("fixed", func(t *testing.T) {
		check(t, NewAllowlist(prefixes(t, "198.51.100.0/24"), false), map[netip.Addr]bool{office: true, github: false, stranger: false, {}: false})
	})
	t.Run("github before its ranges are loaded admits all", func(t *testing.T) {
		check(t, NewAllowlist(prefixes(t, "198.51.100.0/24"), true), map[netip.Addr]bool{office: true, github: true, stranger: true})
	})
	t.Run("github loaded, failures keep the last good list", func(t *testing.T) {
		a := NewAllowlist(prefixes(t, "198.51.100.0/24"), true)
		src := &hookRanges{ranges: []string{"192.30.252.0/22", "2a0a:a440::/29"}}
		if n, err := a.Load(ctx, src); n != 2 || err != nil {
			t.Fatalf("Load() = %d, %v; want 2, nil", n, err)
		}
		want := map[netip.Addr]bool{office: true, github: true, stranger: false, netip.MustParseAddr("2a0a:a440::1"): true}
		check(t, a, want)
		for _, bad := range []*hookRanges{
			{err: errors.New("GitHub is down")},
			{ranges: nil},
			{ranges: []string{"192.30.252.0/22", "not a range"}},
		} {
			if _, err := a.Load(ctx, bad); err == nil {
				t.Errorf("Load(%+v) = nil error, want one", bad)
			}
			check(t, a, want)
		}
		src.ranges = []string{"203.0.113.0/24"}
		if _, err := a.Load(ctx, src); err != nil {
			t.Fatal(err)
		}
		check(t, a, map[netip.Addr]bool{office: true, github: false, stranger: true})
	})
}

// Follow loads at once, and returns when its context ends.
func TestAllowlistFollow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	a := NewAllowlist(nil, true)
	done := make(chan struct{})
	go func() { a.Follow(ctx, &hookRanges{ranges: []string{"192.30.252.0/22"}}, time.Hour, nil); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); a.hookRanges() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Follow did not load the ranges within 5s")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow still running 5s after its context ended")
	}
}
