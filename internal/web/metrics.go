package web

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"

	"github.com/hookwise/hookwise/internal/cost"
	"github.com/hookwise/hookwise/internal/store"
)

// scrapeTimeout bounds the database queries of one scrape.
const scrapeTimeout = 5 * time.Second

var jobsDesc = prometheus.NewDesc("hookwise_jobs",
	"Jobs in the queue by River state, counted at scrape time.", []string{"state"}, nil)

// jobsCollector reports hookwise_jobs{state} from the queue at each scrape,
// so the numbers come from the database and agree across instances.
type jobsCollector struct{ q Queue }

// JobsCollector returns a collector of the gauge hookwise_jobs{state}, read
// from q.JobCounts at scrape time. Register it on the registry whose
// Gatherer is given to NewHandler.
func JobsCollector(q Queue) prometheus.Collector { return jobsCollector{q: q} }

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := c.q.JobCounts(ctx)
	if err != nil {
		// The scrape handler logs it and serves the other metrics.
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	// Every state is reported, zero included, so that alerts such as
	// hookwise_jobs{state="discarded"} > 0 need no absent() guard.
	for _, st := range rivertype.JobStates() {
		if _, ok := counts[string(st)]; !ok {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, 0, string(st))
		}
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), st)
	}
}

var (
	budgetSpentDesc = prometheus.NewDesc("hookwise_budget_spent_dollars",
		"Spent in the current period of each budget, reservations included, read from the ledger at scrape time.",
		[]string{"scope", "period"}, nil)
	budgetLimitDesc = prometheus.NewDesc("hookwise_budget_limit_dollars",
		"Each budget's limit.", []string{"scope", "period"}, nil)
)

// Spender reports what a budget's scope has spent in its period.
type Spender interface {
	Spent(ctx context.Context, l store.Limit) (int64, error)
}

// budgetCollector reports every configured budget's spending from the
// ledger at each scrape: the same on every instance, and back to zero as
// soon as a period resets, not at the next call.
type budgetCollector struct {
	spender Spender
	budgets cost.Budgets
	now     func() time.Time
}

// BudgetCollector returns a collector of hookwise_budget_spent_dollars and
// hookwise_budget_limit_dollars{scope,period} for every budget configured,
// in the periods that hold now().
func BudgetCollector(s Spender, b cost.Budgets, now func() time.Time) prometheus.Collector {
	return budgetCollector{spender: s, budgets: b, now: now}
}

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetSpentDesc
	ch <- budgetLimitDesc
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for _, l := range c.budgets.All(c.now()) {
		ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(l.Micros)/1e6, l.Scope, l.Kind())
		spent, err := c.spender.Spent(ctx, l)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(budgetSpentDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(budgetSpentDesc, prometheus.GaugeValue, float64(spent)/1e6, l.Scope, l.Kind())
	}
}
