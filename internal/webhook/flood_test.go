package webhook_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/webhook"
	"github.com/hookwise/hookwise/internal/webhook/floodtest"
)

// unfair turns the per-client limits off: the handler as it would be
// without them, with only the global body budget.
func unfair(o *webhook.Options) {
	o.ClientBodyShare, o.ClientMaxUnverified, o.PenaltyFailures = 1, -1, -1
}

// floodResult is what GitHub's deliveries met during a flood.
type floodResult struct {
	floodtest.Result
	stored int         // rows in hw_deliveries afterwards
	flood  map[int]int // the flood posters' answers by status
}

func (r floodResult) String() string {
	return fmt.Sprintf("%s, %d stored; flood posts answered %v", r.Result, r.stored, r.flood)
}

// Acceptance: while one address floods the webhook, every delivery GitHub
// makes from another is acknowledged 2xx within 250 ms (p99), and stored.
func TestFloodKeepsGitHubServed(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a real server for 12 s")
	}
	limit, rate, d := 250*time.Millisecond, floodtest.Rate, 10*time.Second
	if raceEnabled {
		// The race detector slows everything several times over: the bound
		// is then GitHub's own timeout, on a shorter, gentler run.
		limit, rate, d = 10*time.Second, floodtest.Rate/4, 5*time.Second
	}
	res := runFlood(t, nil, rate, d)
	t.Log(res)
	if res.OK != res.Sent {
		t.Errorf("GitHub's deliveries during the flood: %d of %d 2xx (statuses %v), want all", res.OK, res.Sent, res.Statuses)
	}
	if res.P99 >= limit {
		t.Errorf("p99 of GitHub's deliveries during the flood = %.1f ms, want under %s", ms(res.P99), limit)
	}
	if res.stored != res.Sent {
		t.Errorf("rows stored = %d, want %d (one per delivery)", res.stored, res.Sent)
	}
}

// BenchmarkFlood measures GitHub's deliveries during the flood with the
// per-client limits (fair) and without them (unfair, only the global body
// budget). b.N is the number of deliveries, sent at floodtest.Rate a second:
// -benchtime 2000x is a 10 s flood. See BENCHMARKS.md.
func BenchmarkFlood(b *testing.B) {
	for _, mode := range []struct {
		name string
		tune func(*webhook.Options)
	}{{"fair", nil}, {"unfair", unfair}} {
		b.Run(mode.name, func(b *testing.B) {
			res := runFlood(b, mode.tune, floodtest.Rate, time.Duration(b.N)*time.Second/floodtest.Rate)
			b.Log(res)
			b.ReportMetric(100*float64(res.OK)/float64(max(res.Sent, 1)), "%2xx")
			b.ReportMetric(ms(res.P50), "p50-ms")
			b.ReportMetric(ms(res.P99), "p99-ms")
			b.ReportMetric(ms(res.Max), "max-ms")
			b.ReportMetric(float64(res.stored), "stored")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// runFlood serves a handler (tuned by tune, if not nil) on loopback with a
// SQLite store, floods it from floodtest.FloodAddr and delivers from
// floodtest.GitHubAddr at rate a second for d.
func runFlood(tb testing.TB, tune func(*webhook.Options), rate int, d time.Duration) floodResult {
	tb.Helper()
	e := newHandlerTuned(tb, filepath.Join(tb.TempDir(), "hookwise.db"), nil, tune)
	target := e.srv.URL + "/webhook"
	flood, err := floodtest.Start(target)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { flood.Stop() })
	time.Sleep(floodtest.Warmup)
	payload := issuesOpenedPayload(tb, benchPayloadSize)
	res := floodResult{Result: floodtest.Deliver(target, testSecret, rate, d, func(int) []byte { return payload })}
	res.flood = flood.Stop()
	res.stored = e.count(tb, `SELECT COUNT(*) FROM hw_deliveries`)
	return res
}
