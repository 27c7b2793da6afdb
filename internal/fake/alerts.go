package fake

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// AlertWebhook is a Slack-compatible incoming webhook, as budget alerts are
// sent to: it records the "text" of every JSON body posted to it. It is safe
// for concurrent use.
type AlertWebhook struct {
	mu    sync.Mutex
	texts []string
}

// ServeHTTP records the posted text and answers 200, as Slack does.
func (a *AlertWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	var m struct{ Text string }
	if err != nil || json.Unmarshal(b, &m) != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.texts = append(a.texts, m.Text)
	a.mu.Unlock()
}

// Texts returns the texts received, oldest first.
func (a *AlertWebhook) Texts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.texts...)
}
