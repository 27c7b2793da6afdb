// Package cost prices model calls. Prices are dollars per million tokens, as
// Anthropic publishes them; amounts are kept in millionths of a dollar so
// that sums are exact.
package cost

import (
	"math"
	"strings"
)

// Price is what one million tokens of each kind cost, in dollars.
type Price struct {
	Input, Output, CacheWrite, CacheRead float64
}

// Usage is the token counts of one call.
type Usage struct {
	Input, Output, CacheWrite, CacheRead int64
}

// defaults are the list prices of current Claude models, matched by prefix
// (the longest wins) so that dated model ids find their family.
var defaults = map[string]Price{
	"claude-opus-4":     {Input: 15, Output: 75, CacheWrite: 18.75, CacheRead: 1.50},
	"claude-opus-4-5":   {Input: 5, Output: 25, CacheWrite: 6.25, CacheRead: 0.50},
	"claude-opus-4-6":   {Input: 5, Output: 25, CacheWrite: 6.25, CacheRead: 0.50},
	"claude-haiku-4-5":  {Input: 1, Output: 5, CacheWrite: 1.25, CacheRead: 0.10},
	"claude-sonnet-4":   {Input: 3, Output: 15, CacheWrite: 3.75, CacheRead: 0.30},
	"claude-haiku-4":    {Input: 1, Output: 5, CacheWrite: 1.25, CacheRead: 0.10},
	"claude-3-5-haiku":  {Input: 0.80, Output: 4, CacheWrite: 1, CacheRead: 0.08},
	"claude-3-7-sonnet": {Input: 3, Output: 15, CacheWrite: 3.75, CacheRead: 0.30},
}

// fallback prices an unknown model like the Sonnet family, so spending is
// never recorded as free.
var fallback = defaults["claude-sonnet-4"]

// Table is a price table: the defaults with a configuration's overrides.
type Table struct{ prices map[string]Price }

// NewTable returns the default prices with over added or replacing them,
// by model id prefix.
func NewTable(over map[string]Price) Table {
	t := Table{prices: make(map[string]Price, len(defaults)+len(over))}
	for k, v := range defaults {
		t.prices[k] = v
	}
	for k, v := range over {
		t.prices[k] = v
	}
	return t
}

// For returns the price of model: the entry with the longest prefix of its
// id, else the Sonnet family's.
func (t Table) For(model string) Price {
	best, bestLen := fallback, 0
	for prefix, p := range t.prices {
		if strings.HasPrefix(model, prefix) && len(prefix) > bestLen {
			best, bestLen = p, len(prefix)
		}
	}
	return best
}

// For returns the default price of model.
func For(model string) Price { return NewTable(nil).For(model) }

// Batch is the price through the Message Batches API: half of each.
func (p Price) Batch() Price {
	return Price{Input: p.Input / 2, Output: p.Output / 2, CacheWrite: p.CacheWrite / 2, CacheRead: p.CacheRead / 2}
}

// Estimate is the most a call can cost, in millionths of a dollar: every
// input token at the dearer of the input and cache-write prices, and the
// whole of maxOutput.
func (p Price) Estimate(inputTokens, maxOutput int64) int64 {
	return int64(math.Ceil(float64(inputTokens)*max(p.Input, p.CacheWrite) + float64(maxOutput)*p.Output))
}

// Micros is the cost of u at p in millionths of a dollar, rounded to the
// nearest: a million tokens at $1 is exactly 1,000,000.
func (p Price) Micros(u Usage) int64 {
	return int64(math.Round(float64(u.Input)*p.Input + float64(u.Output)*p.Output +
		float64(u.CacheWrite)*p.CacheWrite + float64(u.CacheRead)*p.CacheRead))
}
