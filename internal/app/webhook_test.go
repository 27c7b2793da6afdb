package app_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/apptest"
	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/fake"
)

// sender is a client that connects from the loopback address from and,
// if forwardedFor is set, says it forwards for that address.
func sender(from, forwardedFor string) *http.Client {
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	return &http.Client{Timeout: 10 * time.Second, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if forwardedFor != "" {
			r.Header.Set("X-Forwarded-For", forwardedFor)
		}
		return tr.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func issueDelivery(guid string) fake.Delivery {
	return fake.Delivery{Event: "issues", GUID: guid, HookID: "42",
		Payload: fake.IssueEvent("opened", "acme/app", 1, "Crash on start", "It crashes when started with an empty config file.", "alice")}
}

// With allow_sources "github", deliveries are read only from the hook
// ranges GitHub lists at GET /meta of github.api_url.
func TestWebhookAllowsGitHubHookRanges(t *testing.T) {
	t.Parallel()
	github := fake.NewGitHub(fake.GitHubOptions{Tokens: []string{apptest.GitHubToken}, HookRanges: []string{"127.0.0.1/32", "2a0a:a440::/29"}})
	model := fake.NewAnthropic(fake.AnthropicOptions{APIKey: apptest.ModelKey})
	h := startWith(t, github, model, func(c *config.Config) { c.Webhook.AllowSources = []string{"github"} })

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.get(t, "/metrics"), "hookwise_webhook_github_hook_ranges 2") {
		if time.Now().After(deadline) {
			t.Fatal("GitHub's hook ranges not loaded within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		from string
		want int
	}{{"127.0.0.1", http.StatusAccepted}, {"127.0.0.2", http.StatusForbidden}} {
		code, err := fake.Send(sender(tc.from, ""), h.endpoint, secret, issueDelivery("from-"+tc.from))
		if err != nil || code != tc.want {
			t.Errorf("delivery from %s = %d, %v; want %d", tc.from, code, err, tc.want)
		}
	}
	if m := h.get(t, "/metrics"); !strings.Contains(m, `hookwise_webhook_refused_total{reason="source"} 1`) {
		t.Errorf("/metrics lacks one refusal for its source")
	}
}

// Behind a trusted proxy the client is the address the proxy names; the
// same header from anyone else is ignored.
func TestWebhookTrustedProxy(t *testing.T) {
	t.Parallel()
	h := start(t, 0, func(c *config.Config) {
		c.Webhook.AllowSources = []string{"203.0.113.0/24"}
		c.Webhook.TrustedProxies = []string{"127.0.0.1"}
	})
	for i, tc := range []struct {
		from, forwardedFor string
		want               int
	}{
		{"127.0.0.1", "203.0.113.5", http.StatusAccepted},
		{"127.0.0.1", "203.0.113.5, 198.51.100.1", http.StatusForbidden}, // the proxy's peer is the client
		{"127.0.0.1", "198.51.100.1, 203.0.113.5", http.StatusAccepted},  // what came before is the client's say
		{"127.0.0.2", "203.0.113.5", http.StatusForbidden},               // not a trusted proxy
		{"127.0.0.1", "", http.StatusForbidden},                          // the proxy itself is not allowed
	} {
		code, err := fake.Send(sender(tc.from, tc.forwardedFor), h.endpoint, secret, issueDelivery(fmt.Sprintf("proxy-%d", i)))
		if err != nil || code != tc.want {
			t.Errorf("delivery from %s forwarding for %q = %d, %v; want %d", tc.from, tc.forwardedFor, code, err, tc.want)
		}
	}
}
