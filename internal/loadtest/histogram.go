package loadtest

import (
	"math"
	"time"
)

// Histogram records latencies in buckets 1% wide, from 10 µs to about two
// minutes: percentiles within 1% of the truth in a fixed 16 KB, however
// long the run.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histFloor  = 10 * time.Microsecond
	histGrowth = 1.01
	histCount  = 1650 // histFloor·1.01^1650 ≈ 130 s
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{counts: make([]uint64, histCount)} }

func histBucket(d time.Duration) int {
	if d <= histFloor {
		return 0
	}
	i := 1 + int(math.Log(float64(d)/float64(histFloor))/math.Log(histGrowth))
	return min(i, histCount-1)
}

// histUpper is the largest latency bucket i holds.
func histUpper(i int) time.Duration {
	return time.Duration(float64(histFloor) * math.Pow(histGrowth, float64(i)))
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	h.counts[histBucket(d)]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's latencies to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is how many latencies were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the mean latency.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1): the upper
// bound of its bucket, never more than the maximum.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

// Bucket is one line of the histogram report: how many latencies were at
// most Upper (and above the previous bucket's).
type Bucket struct {
	Upper time.Duration `json:"upper_ns"` // 0 for the last, unbounded bucket
	Count uint64        `json:"count"`
}

// ReportBounds are the bounds of the report's buckets.
var ReportBounds = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
}

// Buckets sums the fine buckets into ReportBounds, and one for the rest. A
// fine bucket that straddles a bound counts in the bucket of its upper end.
func (h *Histogram) Buckets() []Bucket {
	out := make([]Bucket, len(ReportBounds)+1)
	for i, b := range ReportBounds {
		out[i].Upper = b
	}
	j := 0
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		up := histUpper(i)
		for j < len(ReportBounds) && up > ReportBounds[j] {
			j++
		}
		out[j].Count += c
	}
	return out
}
