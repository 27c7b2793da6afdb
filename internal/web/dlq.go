package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/hookwise/hookwise/internal/queue"
)

// The dead-letter queue: deliveries whose processing gave up, with why.

type deadJobJSON struct {
	ID          int64              `json:"id"`
	State       string             `json:"state"`
	Attempts    int                `json:"attempts"`
	FinalizedAt *time.Time         `json:"finalized_at"`
	Errors      []attemptErrorJSON `json:"errors"`
}

type attemptErrorJSON struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
}

// DeadLetterView is a dead letter as the admin API and `hookwise dlq show`
// present it: the delivery (its reason is the final error, with the
// upstream's status, error type, message and request id) and every
// attempt's error as River recorded it.
func DeadLetterView(dl queue.DeadLetter) any {
	jobs := make([]deadJobJSON, len(dl.Jobs))
	for i, j := range dl.Jobs {
		jobs[i] = deadJobJSON{ID: j.ID, State: j.State, Attempts: j.Attempts, Errors: []attemptErrorJSON{}}
		if !j.FinalizedAt.IsZero() {
			at := j.FinalizedAt.UTC()
			jobs[i].FinalizedAt = &at
		}
		for _, e := range j.Errors {
			jobs[i].Errors = append(jobs[i].Errors, attemptErrorJSON{At: e.At.UTC(), Attempt: e.Attempt, Error: e.Error})
		}
	}
	return struct {
		Delivery deliveryJSON  `json:"delivery"`
		Jobs     []deadJobJSON `json:"jobs"`
	}{toDeliveryJSON(dl.Delivery), jobs}
}

// listDead answers GET /api/v1/dlq, newest first, paged like deliveries.
func (s *server) listDead(w http.ResponseWriter, r *http.Request) error {
	f, err := deliveryFilter(r)
	if err != nil {
		return err
	}
	ds, err := s.queue.DeadLetters(r.Context(), f.Limit+1, f.Before)
	if err != nil {
		return err
	}
	out, next := page(ds, f.Limit)
	writeJSON(w, http.StatusOK, struct {
		DeadLetters []deliveryJSON `json:"dead_letters"`
		NextBefore  *int64         `json:"next_before"`
	}{out, next})
	return nil
}

// showDead answers GET /api/v1/dlq/{ref}.
func (s *server) showDead(w http.ResponseWriter, r *http.Request) error {
	d, err := s.findDelivery(r)
	if err != nil {
		return err
	}
	dl, err := s.queue.DeadLetter(r.Context(), d.GUID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DeadLetterView(dl))
	return nil
}

// retryDead answers POST /api/v1/dlq/{ref}/retry: 202, and a worker runs
// the delivery again from the start; 409 when it is not a dead letter.
func (s *server) retryDead(w http.ResponseWriter, r *http.Request) error {
	d, err := s.findDelivery(r)
	if err != nil {
		return err
	}
	if err := s.queue.RetryDead(r.Context(), d.ID); err != nil {
		return deadConflict(err)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
	return nil
}

// retryAllDead answers POST /api/v1/dlq/retry.
func (s *server) retryAllDead(w http.ResponseWriter, r *http.Request) error {
	n, err := s.queue.RetryAllDead(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"retried": n})
	return nil
}

// discardDead answers POST /api/v1/dlq/{ref}/discard.
func (s *server) discardDead(w http.ResponseWriter, r *http.Request) error {
	d, err := s.findDelivery(r)
	if err != nil {
		return err
	}
	if err := s.queue.DiscardDead(r.Context(), d.ID); err != nil {
		return deadConflict(err)
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "discarded"})
	return nil
}

func deadConflict(err error) error {
	if errors.Is(err, queue.ErrNotDead) {
		return &httpError{code: http.StatusConflict, msg: "delivery is not in the dead-letter queue", err: err}
	}
	return err
}
