package web

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river/rivertype"
)

// jobsTimeout bounds the job count query of one scrape.
const jobsTimeout = 5 * time.Second

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
	ctx, cancel := context.WithTimeout(context.Background(), jobsTimeout)
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
