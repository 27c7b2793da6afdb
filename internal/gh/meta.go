package gh

import (
	"context"
	"fmt"

	"github.com/google/go-github/v84/github"
)

// HookRanges returns the CIDRs GitHub sends webhooks from: the "hooks"
// field of GET /meta. The endpoint needs no credentials; with a token the
// request counts against the token's limit instead of the 60 an hour of
// the address. App credentials are not sent (an App JWT is for /app only).
func (c *Client) HookRanges(ctx context.Context) ([]string, error) {
	g := c.pat
	if g == nil {
		g = github.NewClient(c.hc)
		u := *c.base
		g.BaseURL = &u
		g.UserAgent = c.ua
	}
	meta, resp, err := g.Meta.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("get meta: %w", toError(err, resp, c.token))
	}
	return meta.Hooks, nil
}
