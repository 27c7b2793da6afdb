package cost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Alert is one crossed budget threshold.
type Alert struct {
	Scope     string // "global", "repo:owner/name", "org:owner", "installation:42"
	Period    string // "day 2026-11-29" or "month 2026-11"
	Threshold int    // percent of the limit
	SpentUSD  float64
	LimitUSD  float64
}

// Text is the alert as one line for people, such as "hookwise: 80% of the
// daily budget for repo:acme/app used ($0.80 of $1.00, day 2026-11-29)".
func (a Alert) Text() string {
	budget := "budget"
	switch kind, _, _ := strings.Cut(a.Period, " "); kind {
	case "day":
		budget = "daily budget"
	case "month":
		budget = "monthly budget"
	}
	if a.Scope != "" && a.Scope != "global" {
		budget += " for " + a.Scope
	}
	amounts := fmt.Sprintf("($%.2f of $%.2f, %s)", a.SpentUSD, a.LimitUSD, a.Period)
	switch {
	case a.Threshold == 100:
		return fmt.Sprintf("hookwise: %s reached %s", budget, amounts)
	case a.Threshold > 100:
		return fmt.Sprintf("hookwise: %s exceeded, %d%% used %s", budget, a.Threshold, amounts)
	}
	return fmt.Sprintf("hookwise: %d%% of the %s used %s", a.Threshold, budget, amounts)
}

// Alert formats, as budget.alert_format names them.
const (
	FormatSlack = "slack" // {"text": ...}, which Slack-compatible incoming webhooks take
	FormatJSON  = "json"  // the text and every field of the alert
)

// notifyTimeout bounds a notification when Notifier.Client is nil: an alert
// is sent from a periodic job that must not hang on a slow receiver.
const notifyTimeout = 10 * time.Second

// maxErrorBody is how much of a refusing receiver's answer an error quotes.
const maxErrorBody = 200

// Notifier posts budget alerts to a webhook.
type Notifier struct {
	// URL is the webhook. It is a credential (Slack's carry a token in the
	// path), so no error Send returns contains it.
	URL string
	// Format is FormatSlack (also when empty) or FormatJSON.
	Format string
	// Client sends the alert; nil uses one with a 10 s timeout.
	Client *http.Client
}

// Send posts a to the webhook. An answer other than 2xx is an error quoting
// the status and the start of the body.
func (n *Notifier) Send(ctx context.Context, a Alert) error {
	switch n.Format {
	case FormatSlack, "":
		return n.post(ctx, struct {
			Text string `json:"text"`
		}{a.Text()})
	case FormatJSON:
		return n.post(ctx, struct {
			Text      string  `json:"text"`
			Scope     string  `json:"scope"`
			Period    string  `json:"period"`
			Threshold int     `json:"threshold"`
			SpentUSD  float64 `json:"spent_usd"`
			LimitUSD  float64 `json:"limit_usd"`
		}{a.Text(), a.Scope, a.Period, a.Threshold, a.SpentUSD, a.LimitUSD})
	}
	return fmt.Errorf("send alert: format %q: want %s or %s", n.Format, FormatSlack, FormatJSON)
}

// Notice is an operational alert: what is wrong (or right again), as one
// line for people, and its facts for machines.
type Notice struct {
	Kind   string // e.g. "write_backlog"
	Text   string
	Fields map[string]any
}

// Notify posts an operational alert in the configured format: the text
// alone for Slack, the kind, text and fields as JSON otherwise.
func (n *Notifier) Notify(ctx context.Context, e Notice) error {
	switch n.Format {
	case FormatSlack, "":
		return n.post(ctx, map[string]any{"text": e.Text})
	case FormatJSON:
		payload := map[string]any{}
		for k, v := range e.Fields {
			payload[k] = v
		}
		payload["kind"], payload["text"] = e.Kind, e.Text
		return n.post(ctx, payload)
	}
	return fmt.Errorf("send alert: format %q: want %s or %s", n.Format, FormatSlack, FormatJSON)
}

func (n *Notifier) post(ctx context.Context, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("send alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		// The parse error quotes the URL: say only that it is bad.
		return errors.New("send alert: the webhook URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	client := n.Client
	if client == nil {
		client = &http.Client{Timeout: notifyTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("send alert: %w", stripURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(strings.ToValidUTF8(string(snippet), ""))
	if n.URL != "" {
		// A receiver may echo the URL it was called on.
		msg = strings.ReplaceAll(msg, n.URL, "[webhook URL]")
	}
	if msg == "" {
		return fmt.Errorf("send alert: webhook answered %s", resp.Status)
	}
	return fmt.Errorf("send alert: webhook answered %s: %s", resp.Status, msg)
}

// stripURL removes the URL that http.Client puts in its errors
// (`Post "https://hooks.slack.com/services/…": …`), keeping the cause, so
// that errors.Is still finds context.DeadlineExceeded and the like.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &strippedError{op: ue.Op, err: ue.Err}
	}
	return err
}

// strippedError is a url.Error without its URL.
type strippedError struct {
	op  string
	err error
}

func (e *strippedError) Error() string { return strings.ToLower(e.op) + " webhook: " + e.err.Error() }
func (e *strippedError) Unwrap() error { return e.err }
