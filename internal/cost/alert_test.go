package cost

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAlertText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    Alert
		want string
	}{
		{Alert{Scope: "repo:acme/app", Period: "day 2026-11-29", Threshold: 80, SpentUSD: 0.8, LimitUSD: 1},
			"hookwise: 80% of the daily budget for repo:acme/app used ($0.80 of $1.00, day 2026-11-29)"},
		{Alert{Scope: "global", Period: "month 2026-11", Threshold: 50, SpentUSD: 251.5, LimitUSD: 500},
			"hookwise: 50% of the monthly budget used ($251.50 of $500.00, month 2026-11)"},
		{Alert{Scope: "org:acme", Period: "day 2026-11-29", Threshold: 100, SpentUSD: 10.02, LimitUSD: 10},
			"hookwise: daily budget for org:acme reached ($10.02 of $10.00, day 2026-11-29)"},
		{Alert{Scope: "installation:42", Period: "month 2026-11", Threshold: 150, SpentUSD: 15, LimitUSD: 10},
			"hookwise: monthly budget for installation:42 exceeded, 150% used ($15.00 of $10.00, month 2026-11)"},
	}
	for _, tt := range tests {
		if got := tt.a.Text(); got != tt.want {
			t.Errorf("%+v.Text() = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// received is one request a test webhook got.
type received struct {
	contentType string
	body        map[string]any
}

// webhook serves a receiver that answers status and body and sends each
// request it gets on the returned channel.
func webhook(t *testing.T, status int, answer string) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rec received
		rec.contentType = r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			t.Errorf("webhook request method = %s, want POST", r.Method)
		}
		if err := json.Unmarshal(b, &rec.body); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		got <- rec
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestNotifierFormats(t *testing.T) {
	t.Parallel()
	a := Alert{Scope: "repo:acme/app", Period: "day 2026-11-29", Threshold: 80, SpentUSD: 0.8, LimitUSD: 1}
	text := "hookwise: 80% of the daily budget for repo:acme/app used ($0.80 of $1.00, day 2026-11-29)"
	tests := []struct {
		format string
		want   map[string]any
	}{
		{"slack", map[string]any{"text": text}},
		{"", map[string]any{"text": text}},
		{"json", map[string]any{"text": text, "scope": "repo:acme/app", "period": "day 2026-11-29",
			"threshold": 80.0, "spent_usd": 0.8, "limit_usd": 1.0}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			t.Parallel()
			srv, got := webhook(t, http.StatusOK, "ok")
			n := &Notifier{URL: srv.URL + "/services/T0/B0/s3cret", Format: tt.format}
			if err := n.Send(context.Background(), a); err != nil {
				t.Fatalf("Send: %v", err)
			}
			rec := <-got
			if rec.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", rec.contentType)
			}
			if len(rec.body) != len(tt.want) {
				t.Errorf("body = %v, want %v", rec.body, tt.want)
			}
			for k, v := range tt.want {
				if rec.body[k] != v {
					t.Errorf("body[%q] = %v, want %v", k, rec.body[k], v)
				}
			}
		})
	}
}

func TestNotifierErrors(t *testing.T) {
	t.Parallel()
	a := Alert{Scope: "global", Period: "month 2026-11", Threshold: 100, SpentUSD: 10, LimitUSD: 10}
	const secret = "T0/B0/s3cret-token"

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		srv, _ := webhook(t, http.StatusInternalServerError, "  "+strings.Repeat("x", 300))
		n := &Notifier{URL: srv.URL + "/services/" + secret}
		err := n.Send(context.Background(), a)
		if err == nil {
			t.Fatal("Send to a 500 = nil, want an error")
		}
		msg := err.Error()
		if !strings.Contains(msg, "500 Internal Server Error") || !strings.Contains(msg, strings.Repeat("x", 198)) {
			t.Errorf("Send to a 500 = %q, want the status and the start of the body", msg)
		}
		if strings.Contains(msg, strings.Repeat("x", 201)) {
			t.Errorf("Send to a 500 = %q, want at most 200 bytes of the body", msg)
		}
		if strings.Contains(msg, secret) {
			t.Errorf("Send to a 500 = %q, want no URL", msg)
		}
	})

	t.Run("receiver echoes the URL", func(t *testing.T) {
		t.Parallel()
		var url string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no such hook "+url, http.StatusNotFound)
		}))
		t.Cleanup(srv.Close)
		url = srv.URL + "/services/" + secret
		err := (&Notifier{URL: url}).Send(context.Background(), a)
		if err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), secret) {
			t.Errorf("Send to a 404 quoting the URL = %v, want a 404 error without the URL", err)
		}
	})

	t.Run("transport", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL + "/services/" + secret
		srv.Close() // nothing listens there any more
		err := (&Notifier{URL: url}).Send(context.Background(), a)
		if err == nil {
			t.Fatal("Send to a closed server = nil, want an error")
		}
		if strings.Contains(err.Error(), url) || strings.Contains(err.Error(), secret) {
			t.Errorf("Send to a closed server = %q, want no URL", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := (&Notifier{URL: srv.URL + "/services/" + secret}).Send(ctx, a)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send past its deadline = %v, want context.DeadlineExceeded", err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("Send past its deadline = %q, want no URL", err)
		}
	})

	t.Run("invalid URL", func(t *testing.T) {
		t.Parallel()
		err := (&Notifier{URL: "http://hooks example.com/services/" + secret}).Send(context.Background(), a)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Send to an invalid URL = %v, want an error without the URL", err)
		}
	})

	t.Run("unknown format", func(t *testing.T) {
		t.Parallel()
		err := (&Notifier{URL: "http://127.0.0.1:1/" + secret, Format: "xml"}).Send(context.Background(), a)
		if err == nil || !strings.Contains(err.Error(), `"xml"`) {
			t.Errorf(`Send with format "xml" = %v, want an error naming it`, err)
		}
	})
}
