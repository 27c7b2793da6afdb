package gh

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/hookwise/hookwise/internal/fake"
)

func TestHookRanges(t *testing.T) {
	t.Parallel()
	want := []string{"192.30.252.0/22", "2a0a:a440::/29"}
	_, key := genKey(t)
	for _, tc := range []struct {
		name string
		opts func(url string) Options
	}{
		{"token", func(url string) Options { return Options{BaseURL: url, Token: testToken} }},
		// App credentials are not sent: GET /meta is answered anonymously.
		{"app", func(url string) Options { return Options{BaseURL: url, AppID: 42, PrivateKey: key} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}, HookRanges: want})
			c := newClient(t, tc.opts(url))
			got, err := c.HookRanges(context.Background())
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("HookRanges() = %v, %v; want %v", got, err, want)
			}
			g.SetHookRanges([]string{"203.0.113.0/24"})
			if got, err := c.HookRanges(context.Background()); err != nil || !slices.Equal(got, []string{"203.0.113.0/24"}) {
				t.Errorf("HookRanges() after a change = %v, %v; want [203.0.113.0/24]", got, err)
			}
		})
	}
}

func TestHookRangesErrors(t *testing.T) {
	t.Parallel()
	t.Run("server error", func(t *testing.T) {
		g, url := startFake(t, fake.GitHubOptions{Tokens: []string{testToken}})
		g.FailNext(http.MethodGet, "/meta", http.StatusInternalServerError, 1)
		_, err := newClient(t, Options{BaseURL: url, Token: testToken}).HookRanges(context.Background())
		var ge *Error
		if !errors.As(err, &ge) || ge.Status != http.StatusInternalServerError || !ge.Temporary() {
			t.Errorf("HookRanges() with GitHub failing = %v, want a temporary *Error with status 500", err)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		_, url := startFake(t, fake.GitHubOptions{})
		_, err := newClient(t, Options{BaseURL: url, Token: testToken}).HookRanges(context.Background())
		var ge *Error
		if !errors.As(err, &ge) || ge.Status != http.StatusUnauthorized {
			t.Errorf("HookRanges() with a token GitHub refuses = %v, want *Error with status 401", err)
		}
	})
}
