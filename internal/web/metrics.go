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

// scrapeFor is how long the database-backed gauges of one scrape answer the
// next ones: shorter than any scrape interval, so Prometheus never sees a
// repeat, and long enough that whoever can reach /metrics cannot make the
// database count jobs and sum the ledger at will.
const scrapeFor = 2 * time.Second

var jobsDesc = prometheus.NewDesc("hookwise_jobs",
	"Jobs in the queue by River state, counted at scrape time.", []string{"state"}, nil)

// jobsCollector reports hookwise_jobs{state} from the queue at scrape time,
// so the numbers come from the database and agree across instances.
type jobsCollector struct{ counts *shared[map[string]int64] }

// JobsCollector returns a collector of the gauge hookwise_jobs{state}, read
// from q.JobCounts at scrape time (one read serves the scrapes of the next
// two seconds). Register it on the registry whose Gatherer is given to
// NewHandler.
func JobsCollector(q Queue) prometheus.Collector {
	return jobsCollector{counts: newShared(scrapeFor, scrapeTimeout, q.JobCounts)}
}

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.counts.get(context.Background())
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
// ledger at scrape time: the same on every instance, and back to zero as
// soon as a period resets, not at the next call.
type budgetCollector struct {
	spending *shared[[]budgetSpent]
}

// budgetSpent is one budget's limit and what its scope spent, or why that
// could not be read.
type budgetSpent struct {
	limit store.Limit
	spent int64
	err   error
}

// BudgetCollector returns a collector of hookwise_budget_spent_dollars and
// hookwise_budget_limit_dollars{scope,period} for every budget configured,
// in the periods that hold now() (one read of the ledger serves the scrapes
// of the next two seconds).
func BudgetCollector(s Spender, b cost.Budgets, now func() time.Time) prometheus.Collector {
	read := func(ctx context.Context) ([]budgetSpent, error) {
		var out []budgetSpent
		for _, l := range b.All(now()) {
			spent, err := s.Spent(ctx, l)
			out = append(out, budgetSpent{limit: l, spent: spent, err: err})
		}
		return out, nil
	}
	return budgetCollector{spending: newShared(scrapeFor, scrapeTimeout, read)}
}

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetSpentDesc
	ch <- budgetLimitDesc
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	spending, _ := c.spending.get(context.Background()) // errors are per budget
	for _, b := range spending {
		l := b.limit
		ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(l.Micros)/1e6, l.Scope, l.Kind())
		if b.err != nil {
			ch <- prometheus.NewInvalidMetric(budgetSpentDesc, b.err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(budgetSpentDesc, prometheus.GaugeValue, float64(b.spent)/1e6, l.Scope, l.Kind())
	}
}
