package cost

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookwise/hookwise/internal/config"
	"github.com/hookwise/hookwise/internal/store"
)

// Budgets turn the budget configuration into the limits a call counts
// against.
type Budgets struct{ cfg config.BudgetConfig }

// NewBudgets returns the budgets of cfg.
func NewBudgets(cfg config.BudgetConfig) Budgets { return Budgets{cfg: cfg} }

// Limits returns the limits that a call for repo ("owner/name") through
// installation counts against at now: the global ones and those of every
// matching scope, daily and monthly.
func (b Budgets) Limits(repo string, installation int64, now time.Time) []store.Limit {
	owner, _, _ := strings.Cut(repo, "/")
	return slices.DeleteFunc(b.All(now), func(l store.Limit) bool {
		kind, v, _ := strings.Cut(l.Scope, ":")
		switch kind {
		case "global":
			return false
		case "repo":
			return !strings.EqualFold(v, repo)
		case "org":
			return !strings.EqualFold(v, owner)
		case "installation":
			return v != strconv.FormatInt(installation, 10)
		}
		return true
	})
}

// All returns every configured limit at now: the global ones, then each
// scope's, daily before monthly.
func (b Budgets) All(now time.Time) []store.Limit {
	var out []store.Limit
	add := func(scope string, daily, monthly float64) {
		if daily > 0 {
			out = append(out, limit(scope, "day", daily, now))
		}
		if monthly > 0 {
			out = append(out, limit(scope, "month", monthly, now))
		}
	}
	add("global", b.cfg.Daily, b.cfg.Monthly)
	for _, s := range b.cfg.Scopes {
		add(s.Match, s.Daily, s.Monthly)
	}
	return out
}

// Thresholds returns the alert thresholds, in percent, lowest first.
func (b Budgets) Thresholds() []int {
	t := slices.Clone(b.cfg.AlertThresholds)
	slices.Sort(t)
	return t
}

// limit is the period (UTC day or month) holding now.
func limit(scope, period string, dollars float64, now time.Time) store.Limit {
	now = now.UTC()
	l := store.Limit{Scope: scope, Micros: int64(math.Round(dollars * 1e6))}
	if period == "day" {
		l.Start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		l.End = l.Start.AddDate(0, 0, 1)
		l.Period = "day " + l.Start.Format(time.DateOnly)
	} else {
		l.Start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		l.End = l.Start.AddDate(0, 1, 0)
		l.Period = "month " + l.Start.Format("2006-01")
	}
	return l
}

// Crossed returns the thresholds (percent) that spent has reached of limit.
func Crossed(thresholds []int, spent, limit int64) []int {
	var out []int
	for _, t := range thresholds {
		if limit > 0 && spent*100 >= int64(t)*limit {
			out = append(out, t)
		}
	}
	return out
}

// Estimator turns prompt sizes into token counts, calibrated by what the
// API reported for earlier calls of the same model. It is safe for
// concurrent use.
type Estimator struct {
	mu sync.Mutex
	// charsPerToken per model, a moving average of what calls reported.
	charsPerToken map[string]float64
}

// startCharsPerToken is assumed before a model has answered: English prose
// runs near 4 characters a token and code nearer 3, so 3 overestimates.
const startCharsPerToken = 3.0

// margin is added to every estimate, as the next prompt may tokenise worse
// than the average.
const margin = 1.10

// Tokens estimates the input tokens of a prompt of chars characters.
func (e *Estimator) Tokens(model string, chars int) int64 {
	e.mu.Lock()
	cpt, ok := e.charsPerToken[model]
	e.mu.Unlock()
	if !ok {
		cpt = startCharsPerToken
	}
	return int64(math.Ceil(float64(chars)/cpt*margin)) + 16
}

// Learn records that a prompt of chars characters was billed as tokens
// input tokens (cache reads and writes included).
func (e *Estimator) Learn(model string, chars int, tokens int64) {
	if chars <= 0 || tokens <= 0 {
		return
	}
	got := float64(chars) / float64(tokens)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.charsPerToken == nil {
		e.charsPerToken = map[string]float64{}
	}
	if old, ok := e.charsPerToken[model]; ok {
		got = 0.8*old + 0.2*got
	}
	e.charsPerToken[model] = got
}

// Dollars formats millionths of a dollar.
func Dollars(micros int64) string { return fmt.Sprintf("$%.4f", float64(micros)/1e6) }
