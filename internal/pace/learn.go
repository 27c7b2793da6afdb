package pace

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// observation is one bucket as a response's headers describe it.
type observation struct {
	name      string
	limit     float64
	remaining float64
	reset     time.Time
	// resolution is how coarse reset may be: a second when the header had
	// no fractional seconds (the true reset may be up to that much later).
	resolution time.Duration
}

// anthropicBuckets are the buckets of anthropic-ratelimit-{name}-*.
var anthropicBuckets = []string{"requests", "tokens", "input-tokens", "output-tokens"}

// parseAnthropic reads the anthropic-ratelimit-* headers. A bucket needs a
// limit and a remaining count; its reset (RFC 3339, when the bucket is
// full again) is optional.
func parseAnthropic(h http.Header) []observation {
	var obs []observation
	for _, name := range anthropicBuckets {
		prefix := "Anthropic-Ratelimit-" + name + "-"
		limit, okL := parseCount(h.Get(prefix + "Limit"))
		remaining, okR := parseCount(h.Get(prefix + "Remaining"))
		if !okL || !okR || limit <= 0 {
			continue
		}
		o := observation{name: name, limit: limit, remaining: min(remaining, limit)}
		if v := h.Get(prefix + "Reset"); v != "" {
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				o.reset = t
				if t.Nanosecond() == 0 && !strings.Contains(v, ".") {
					o.resolution = time.Second
				}
			}
		}
		obs = append(obs, o)
	}
	return obs
}

// parseGitHub reads the x-ratelimit-* headers: a fixed window that is full
// again at reset (Unix seconds). The resource defaults to "core".
func parseGitHub(h http.Header) (observation, bool) {
	limit, okL := parseCount(h.Get("X-Ratelimit-Limit"))
	remaining, okR := parseCount(h.Get("X-Ratelimit-Remaining"))
	if !okR {
		if used, ok := parseCount(h.Get("X-Ratelimit-Used")); ok && okL {
			remaining, okR = max(limit-used, 0), true
		}
	}
	if !okL || !okR || limit <= 0 {
		return observation{}, false
	}
	o := observation{name: h.Get("X-Ratelimit-Resource"), limit: limit, remaining: min(remaining, limit)}
	if o.name == "" {
		o.name = "core"
	}
	if v := h.Get("X-Ratelimit-Reset"); v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec > 0 {
			o.reset = time.Unix(sec, 0)
		}
	}
	return o, true
}

func parseCount(v string) (float64, bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return float64(n), true
}

// MaxRetryAfter bounds what a retry-after header can make anyone wait, so
// that a garbled or hostile value (86400) cannot stall a key or snooze a
// job for a day.
const MaxRetryAfter = time.Hour

// RetryAfter reads how long an answer asks the caller to wait:
// retry-after-ms (Anthropic's, more precise), else retry-after in seconds
// (whole or not) or as an HTTP date; capped at MaxRetryAfter. ok is false
// when neither header holds a usable value. It is the one parser of these
// headers for every adapter.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && !math.IsInf(f, 0) {
			return min(time.Duration(math.Ceil(min(f, float64(MaxRetryAfter/time.Millisecond))*float64(time.Millisecond))), MaxRetryAfter), true
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil {
		if sec < 0 || math.IsNaN(sec) {
			return 0, false
		}
		return min(time.Duration(math.Ceil(min(sec, MaxRetryAfter.Seconds())*float64(time.Second))), MaxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// rateHorizon is the least time to a continuous bucket's reset from which
// its refill rate is estimated: the reset has one-second resolution, so a
// shorter horizon gives a rate that may be off by a large factor.
const rateHorizon = 10 * time.Second

// learn updates ks from the headers of the response to tk's request, and
// pauses the key on rate-limit answers.
func (t *Transport) learn(ks *keyState, tk *ticket, resp *http.Response, now time.Time) {
	var obs []observation
	switch t.opts.Upstream {
	case Anthropic:
		obs = parseAnthropic(resp.Header)
	case GitHub:
		if o, ok := parseGitHub(resp.Header); ok {
			obs = append(obs, o)
		}
	}
	rejected := resp.StatusCode == http.StatusTooManyRequests
	if rejected {
		ks.rejected++
	}
	for _, o := range obs {
		ks.observe(o, tk, now, t.opts.Upstream == GitHub)
	}
	retry, hasRetry := RetryAfter(resp.Header, now)
	if rejected && hasRetry && t.opts.Upstream == Anthropic {
		ks.learnRefusal(obs, retry)
	}

	status := resp.StatusCode
	switch t.opts.Upstream {
	case Anthropic:
		if status != http.StatusTooManyRequests {
			return
		}
		if !hasRetry {
			retry = time.Second
		}
		// A 429 while every bucket we see has room means a limit we cannot
		// see (or a burst the server smooths): back off briefly, but do not
		// stall the key for everybody.
		if len(obs) > 0 && !anyEmpty(obs) {
			retry = min(retry, time.Second)
		}
		ks.pause(now.Add(retry))
	case GitHub:
		if status != http.StatusForbidden && status != http.StatusTooManyRequests {
			return
		}
		switch {
		case len(obs) == 1 && obs[0].remaining == 0 && obs[0].reset.After(now):
			// Primary limit spent.
			ks.pause(later(obs[0].reset, now.Add(retry)))
		case hasRetry:
			// Secondary limit.
			ks.pause(now.Add(retry))
		case status == http.StatusTooManyRequests:
			// GitHub's documentation: without retry-after, wait a minute.
			ks.pause(now.Add(time.Minute))
		}
	default:
		if status == http.StatusTooManyRequests && hasRetry {
			ks.pause(now.Add(retry))
		}
	}
}

func anyEmpty(obs []observation) bool {
	for _, o := range obs {
		if o.remaining <= 0 {
			return true
		}
	}
	return false
}

// observe folds one observation, from the answer to tk's request, into
// the key's bucket of that name.
//
// The header's count may leave out any request the server took after
// tk's: one that started after tk, or one that was in flight when tk
// started (the server need not take requests in the order they start).
// The estimate is the count minus all of these, so it errs low even when
// answers come back out of order. Only an observation from a request that
// started later than the last one's replaces the estimate: it is the
// freshest, it lets an estimate that erred low recover, and it shows what
// other clients of the same credential take. An older one would have to
// discount every request started since, and a slow answer would then
// stall the key.
func (ks *keyState) observe(o observation, tk *ticket, now time.Time, window bool) {
	b := ks.buckets[o.name]
	if b == nil {
		b = &bucket{name: o.name, window: window, estAt: now, cost: 1}
		if !window && o.name != "requests" {
			b.tokens, b.cost = true, 0
		}
		ks.buckets[o.name] = b
	}
	b.limit = o.limit
	b.lastStart = later(b.lastStart, tk.start)
	newer := tk.seq > b.obsSeq
	unseen := float64(ks.seq-tk.seq) + float64(tk.overlap)

	if window {
		switch {
		case b.reset.IsZero() || o.reset.After(b.reset):
			// First look at this window.
			b.est, b.reset = o.remaining-unseen, o.reset
		case newer && o.reset.Equal(b.reset):
			b.est = o.remaining - unseen
		}
	} else {
		b.learnRate(o, tk.start, now)
		if b.tokens && !b.costKnown && ks.seq > 0 {
			// Until the cost is known, guess it from what the bucket lost
			// over every request started so far (if it started full).
			b.guess = min(max(b.guess, (o.limit-o.remaining)/float64(ks.seq)), b.limit)
		}
		if newer {
			if b.tokens {
				b.sampleCost(costPoint{seq: tk.seq, remaining: o.remaining, start: tk.start, rejected: ks.rejected, unseen: unseen})
			}
			// The server counted the request somewhere between its start
			// and now; crediting the refill since the start over-credits
			// by the little time the request took to reach the server,
			// while crediting none would lose a response's whole latency
			// of refill (tens of seconds for a model call) on every answer.
			b.est = min(b.limit, o.remaining+b.rate*now.Sub(tk.start).Seconds()) - unseen*b.unitCost()
			b.estAt = now
		}
	}
	if newer {
		b.obsSeq = tk.seq
	}
}

// learnRefusal learns from a 429 what a request costs at least. The
// bucket that refused it is taken to be the one with the least room for
// a request; if that is a token bucket, Anthropic's retry-after is the
// time until it holds enough for the request, which puts a floor under
// the cost: what was left plus what refills by then.
func (ks *keyState) learnRefusal(obs []observation, retry time.Duration) {
	var binding observation
	room := math.Inf(1)
	for _, o := range obs {
		if r := o.remaining / ks.buckets[o.name].need(); r < room {
			binding, room = o, r
		}
	}
	b := ks.buckets[binding.name]
	if b == nil || !b.tokens {
		return
	}
	floor := min(binding.remaining+b.rate*retry.Seconds(), b.limit)
	if floor > b.cost {
		b.cost = floor
		// Rescale the sums so that later samples move on from the floor.
		b.costUsed = floor * b.costN
	}
	b.costKnown = true
}

// costPoint is an observation of a token bucket, as a base for inferring
// what requests cost.
type costPoint struct {
	seq       uint64    // of the request whose answer it came in
	remaining float64   // per the header
	start     time.Time // of that request
	rejected  uint64    // keyState.rejected then
	unseen    float64   // requests the header may not have counted
}

// sampleCost infers from the previous cost point and cur what a request
// costs: what the bucket lost between them, refill included, over the
// requests that got through in between. The refill is taken at the high
// bound of the rate, so that the cost errs high as the refill errs low.
//
// When requests overlap, the server may have counted up to the points'
// unseen requests on the other side of either point than their order
// says. So a sample is taken only over at least four times as many
// requests, and counts that many fewer, so that it errs high; until then
// the base stays, or moves to a point with fewer unseen requests. Nor is
// one taken when the bucket may have filled up in between: what the
// requests took while it was full does not show.
func (b *bucket) sampleCost(cur costPoint) {
	if base := b.base; base != nil && cur.seq > base.seq {
		refilled := base.remaining + b.rateHigh*cur.start.Sub(base.start).Seconds()
		if refilled >= b.limit {
			b.base = &cur
			return
		}
		n := float64(cur.seq-base.seq) - float64(cur.rejected-base.rejected)
		if blur := base.unseen + cur.unseen; n >= 1 && n >= 4*blur {
			b.learnCost(refilled-cur.remaining, max(n-blur, 1))
			b.base = &cur
			return
		}
		if cur.unseen >= base.unseen {
			return
		}
	}
	b.base = &cur
}

// costDecay is the weight of the past in the average cost of a request.
const costDecay = 0.8

// learnCost folds into the bucket's average cost what n requests took.
// The average is weighted by requests: a ratio of decayed sums.
func (b *bucket) learnCost(used, n float64) {
	b.costUsed = costDecay*b.costUsed + used
	b.costN = costDecay*b.costN + n
	b.cost = max(b.costUsed/b.costN, 0)
	b.costKnown = true
}

// learnRate bounds a continuous bucket's refill rate: the rate that takes
// it from remaining to full by reset. The server counted remaining between
// the request's start and now, and the reset may be up to its resolution
// off either way; rate takes the longest horizon this allows (it paces
// the refill, so it must not be too high) and rateHigh the shortest (it
// infers costs, which must not come out too low). With no usable horizon
// both are the limit per minute, as Anthropic's limits are.
func (b *bucket) learnRate(o observation, start, now time.Time) {
	if b.rate == 0 {
		b.rate, b.rateHigh = o.limit/60, o.limit/60
	}
	if o.reset.IsZero() || o.remaining >= o.limit {
		return
	}
	used := o.limit - o.remaining
	if h := o.reset.Add(o.resolution).Sub(start); h >= rateHorizon {
		b.rate = used / h.Seconds()
	}
	if h := o.reset.Add(-o.resolution).Sub(now); h >= rateHorizon {
		b.rateHigh = used / h.Seconds()
	}
	b.rateHigh = max(b.rateHigh, b.rate)
}
