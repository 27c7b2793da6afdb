package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/webhook"
)

// documented are the statuses POST /webhook answers with (README, HTTP
// surface).
var documented = map[int]bool{200: true, 202: true, 400: true, 401: true, 403: true, 413: true, 415: true, 429: true, 503: true}

// Signature modes of FuzzWebhook.
const (
	sigNone = iota
	sigValid
	sigWrong
	sigGarbage
)

// FuzzWebhook sends fuzzed bodies, content types, signatures and
// X-Forwarded-For headers through the handler (behind a trusted proxy, with
// an allowlist, on a real store) and checks that it answers with a
// documented status, never 2xx without a valid signature, and 2xx only for
// a payload that is a JSON object.
func FuzzWebhook(f *testing.F) {
	e := newHandlerTuned(f, filepath.Join(f.TempDir(), "hookwise.db"), nil, func(o *webhook.Options) {
		o.PenaltyFailures = -1 // every input from the same peer: keep them all reaching the parser
		o.QueueWait = 100 * time.Millisecond
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		o.Allow = webhook.NewAllowlist([]netip.Prefix{
			netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32"),
		}, false)
	})
	// The seed corpus is in testdata/fuzz/FuzzWebhook: deliveries as JSON
	// and as forms, pings, deep nesting, bad signatures, content types and
	// forwarding chains.
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte, contentType string, sig uint8, xff string) {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body)) // from 192.0.2.1, a trusted proxy
		req.Header.Set("Content-Type", contentType)
		event := "issues"
		if sig&4 != 0 {
			event = "ping"
		}
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("fuzz-%d", n.Add(1)))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		switch sig % 4 {
		case sigValid:
			req.Header.Set("X-Hub-Signature-256", webhook.Sign(testSecret, body))
		case sigWrong:
			req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("not the secret"), body))
		case sigGarbage:
			req.Header.Set("X-Hub-Signature-256", "sha256="+string(body[:min(len(body), 64)]))
		}
		rec := httptest.NewRecorder()
		start := time.Now()
		e.h.ServeHTTP(rec, req)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("answered after %s", d)
		}
		code := rec.Code
		if !documented[code] {
			t.Fatalf("status %d, not a documented one; body %q", code, rec.Body.String())
		}
		if code/100 != 2 {
			return
		}
		if sig%4 != sigValid {
			t.Fatalf("status %d for a request without a valid signature", code)
		}
		payload := body
		if mediaType, _, _ := mime.ParseMediaType(contentType); mediaType == "application/x-www-form-urlencoded" {
			form, _ := url.ParseQuery(string(body))
			payload = []byte(form.Get("payload"))
		}
		var obj map[string]any
		if json.Unmarshal(payload, &obj) != nil {
			t.Fatalf("status %d for a payload that is not a JSON object: %q", code, payload)
		}
	})
}
