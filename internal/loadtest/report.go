package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Line is a progress snapshot in one line.
func (s Snapshot) Line() string {
	return fmt.Sprintf("%6.1fs  %d answered (%d 2xx, %d not), %d in flight, %.0f req/s",
		s.Elapsed.Seconds(), s.Done, s.OK, s.Failed, s.InFlight, s.Rate)
}

// WriteText writes the report a person reads: the latency histogram, the
// percentiles, the throughput and the answers by status.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %.2fs to %s deliveries", r.Sent, r.Elapsed.Seconds(), r.Repo)
	if r.Opened > 0 {
		fmt.Fprintf(&b, " (%d issues.opened to analyse)", r.Opened)
	}
	fmt.Fprintf(&b, "\n%.1f req/s answered\n\nlatency (of %d answers):\n", r.Throughput(), r.Latency.Count())
	var total uint64
	buckets := r.Latency.Buckets()
	for _, bk := range buckets {
		total += bk.Count
	}
	for i, bk := range buckets {
		label := "> " + short(ReportBounds[len(ReportBounds)-1])
		if bk.Upper > 0 {
			label = "≤ " + short(bk.Upper)
		}
		if bk.Count == 0 && (i == len(buckets)-1 || bk.Upper > r.Latency.Max()) {
			continue
		}
		share := 0.0
		if total > 0 {
			share = float64(bk.Count) / float64(total)
		}
		fmt.Fprintf(&b, "  %8s %9d %6.1f%%  %s\n", label, bk.Count, 100*share, strings.Repeat("#", int(share*40+0.5)))
	}
	fmt.Fprintf(&b, "\np50 %s  p90 %s  p99 %s  max %s\n\nanswers:\n",
		ms(r.Latency.Quantile(0.50)), ms(r.Latency.Quantile(0.90)), ms(r.Latency.Quantile(0.99)), ms(r.Latency.Max()))
	for _, code := range r.Codes() {
		fmt.Fprintf(&b, "  %d  %d\n", code, r.Status[code])
	}
	for cause, n := range r.Errors {
		fmt.Fprintf(&b, "  no answer (%s)  %d\n", cause, n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is a run's result as JSON.
type Summary struct {
	Repo      string         `json:"repo"`
	Sent      int            `json:"sent"`
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Opened    int            `json:"opened"`
	Seconds   float64        `json:"seconds"`
	ReqPerSec float64        `json:"req_per_sec"`
	P50ms     float64        `json:"p50_ms"`
	P90ms     float64        `json:"p90_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	Status    map[int]int    `json:"status"`
	Errors    map[string]int `json:"errors,omitempty"`
	Histogram []Bucket       `json:"histogram"`
	MeanMs    float64        `json:"mean_ms"`
}

// Summary returns the result as JSON-friendly numbers.
func (r *Result) Summary() Summary {
	return Summary{
		Repo: r.Repo, Sent: r.Sent, OK: r.OK(), Failed: r.Failed(), Opened: r.Opened,
		Seconds: r.Elapsed.Seconds(), ReqPerSec: r.Throughput(),
		P50ms: msf(r.Latency.Quantile(0.50)), P90ms: msf(r.Latency.Quantile(0.90)),
		P99ms: msf(r.Latency.Quantile(0.99)), MaxMs: msf(r.Latency.Max()), MeanMs: msf(r.Latency.Mean()),
		Status: r.Status, Errors: r.Errors, Histogram: r.Latency.Buckets(),
	}
}

// WriteJSON writes the summary as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.Summary())
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ms(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fms", msf(d))
}

func short(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%gs", d.Seconds())
	}
	return fmt.Sprintf("%gms", msf(d))
}
