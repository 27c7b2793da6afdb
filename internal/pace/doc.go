// Package pace keeps hookwise within its upstreams' rate limits and stops
// it from hammering an upstream that is down. It is an http.RoundTripper
// that wraps the real transport of the Anthropic SDK's and go-github's
// *http.Client.
//
// # Why in the transport
//
// Every request to an upstream, whichever package makes it and however the
// SDK retries it, passes through the client's transport, and only there are
// the rate-limit headers of every answer seen. Pacing in the callers would
// miss the SDK's own retries and need each caller to share state; pacing
// here needs only a key in the request's context ([WithKey]): a model
// family for Anthropic, a credential for GitHub, because that is what the
// upstreams meter.
//
// # What it learns
//
// From Anthropic, the headers
// anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}:
// continuous token buckets, whose refill rate follows from how far the
// bucket is from full and when it will be full. From GitHub, the headers
// x-ratelimit-{limit,remaining,used,reset,resource}: a fixed window per
// resource that is full again at reset. From both, retry-after (and
// Anthropic's retry-after-ms) on rate-limit answers.
//
// Between answers it keeps its own estimate of each bucket: every request
// it starts takes its share at once, so concurrent callers do not overshoot,
// and the answer to each request started later than the last answered one
// rebases the estimate on the upstream's count minus every request that
// count may have missed (those that overlapped the answered one: the
// upstream need not take requests in the order they start). The
// estimates err low: refill rates are taken at the low end of what the
// one-second resolution of Anthropic's reset allows. Every answer wakes the
// requests waiting on the key to look again.
//
// A request's cost in tokens is unknown until it is answered: a token
// bucket's share is the average consumption per request inferred from
// answers that bracket few overlapping requests, and from the retry-after
// of a 429 (the time until the bucket holds enough). Until there is such an
// answer and once the bucket is half empty, requests go one at a time.
//
// # Guarantees
//
//   - Until a key has learned a limit, only MaxConcurrent holds it back.
//   - While a bucket has room, requests go at once: capacity is used in
//     full, and pacing sets in only as the bucket nears empty (Anthropic: at
//     the refill rate; GitHub: the last 10% of a window spread evenly to its
//     reset, and nothing more until the reset once it is spent).
//   - The write window is exact: however many callers race, no more than
//     WritesPerMinute writes start in any 60 s, nor WritesPerHour in any
//     hour, and no two start closer than WriteSpacing; a write's start is
//     recorded before it is sent.
//   - A 429 pauses the key until the upstream says; from Anthropic, while
//     every bucket still has room, for at most a second, so that one
//     caller's rate limit does not stall everybody.
//   - After FailureThreshold consecutive failures (transport errors, 500,
//     502, 503, 504, 529; never 4xx or 429) the breaker opens: requests fail
//     at once with an *OpenError carrying how long to wait, then one probe
//     goes through; its success closes the breaker, its failure doubles the
//     open period up to MaxOpenFor.
//   - Every wait ends when the request's context does; the concurrency slot
//     is given back and the error wraps ctx.Err().
//   - Request bodies are neither read nor buffered, and no header value
//     reaches an error or a metric.
package pace
