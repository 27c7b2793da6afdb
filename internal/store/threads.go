package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ThreadState is what coalescing knows of one thread. A thread's deliveries
// are ordered by the updated_at their payloads show the thread's object
// with, then by id (see Newer): a redelivery of an old event gets a new id
// but keeps its old updated_at.
type ThreadState struct {
	Thread           string
	LatestDelivery   int64     // the newest delivery planned for the thread
	LatestAt         time.Time // when it was received
	LatestUpdated    time.Time // the thread's updated_at in its payload
	AnalysedDelivery int64     // the delivery whose analysis is the thread's latest; 0: none
	AnalysedUpdated  time.Time // the thread's updated_at in that delivery's payload
	AnalysedSubject  string    // what that analysis saw: a head commit, the text
	AnalysedAt       time.Time
}

// Newer reports whether the delivery with id a, whose payload shows the
// thread updated at aUpdated, holds a newer state of its thread than
// delivery b. An updated_at of 0 is unknown (a thread noted before
// migration 008): the ids decide then, as they did before it.
func Newer(aUpdated time.Time, a int64, bUpdated time.Time, b int64) bool {
	am, bm := aUpdated.UnixMilli(), bUpdated.UnixMilli()
	if am == 0 || bm == 0 {
		return a > b
	}
	return am > bm || am == bm && a > b
}

// newerSQL is Newer in SQL: whether the delivery id, updated (the
// columns, parameters or excluded values named) is newer than the thread's
// stored one.
func newerSQL(id, updated, storedID, storedUpdated string) string {
	return `(CASE WHEN ` + updated + ` = 0 OR ` + storedUpdated + ` = 0 THEN ` + id + ` > ` + storedID +
		` ELSE ` + updated + ` > ` + storedUpdated + ` OR ` + updated + ` = ` + storedUpdated + ` AND ` + id + ` > ` + storedID + ` END)`
}

// NoteThread records that delivery id, received at, whose payload shows
// the thread updated at updated, was planned for an analysis of thread,
// makes it the thread's latest delivery if it is the newest (see Newer),
// and returns the thread's state.
func (s *Store) NoteThread(ctx context.Context, thread string, id int64, at, updated time.Time) (ThreadState, error) {
	var st ThreadState
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE hw_deliveries SET thread = ? WHERE id = ?`), thread, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_threads (thread, latest_delivery, latest_at, latest_updated) VALUES (?, ?, ?, ?)
			ON CONFLICT (thread) DO UPDATE SET latest_delivery = excluded.latest_delivery, latest_at = excluded.latest_at,
				latest_updated = excluded.latest_updated
			WHERE `+newerSQL("excluded.latest_delivery", "excluded.latest_updated", "hw_threads.latest_delivery", "hw_threads.latest_updated")),
			thread, id, at.UnixMilli(), updated.UnixMilli()); err != nil {
			return err
		}
		var err error
		st, err = s.threadState(ctx, tx, thread)
		return err
	})
	if err != nil {
		return ThreadState{}, fmt.Errorf("note thread %s: %w", thread, err)
	}
	return st, nil
}

// Thread returns a thread's state.
func (s *Store) Thread(ctx context.Context, thread string) (ThreadState, error) {
	st, err := s.threadState(ctx, s.DB, thread)
	if err != nil {
		return ThreadState{}, fmt.Errorf("thread %s: %w", thread, err)
	}
	return st, nil
}

func (s *Store) threadState(ctx context.Context, db dbtx, thread string) (ThreadState, error) {
	st := ThreadState{Thread: thread}
	var latest, latestUpdated, analysed, analysedUpdated int64
	err := db.QueryRowContext(ctx, s.q(`SELECT latest_delivery, latest_at, latest_updated, analysed_delivery, analysed_updated,
		analysed_subject, analysed_at FROM hw_threads WHERE thread = ?`), thread).Scan(&st.LatestDelivery, &latest, &latestUpdated,
		&st.AnalysedDelivery, &analysedUpdated, &st.AnalysedSubject, &analysed)
	if errors.Is(err, sql.ErrNoRows) {
		return ThreadState{}, ErrNotFound
	}
	if err != nil {
		return ThreadState{}, err
	}
	st.LatestAt = time.UnixMilli(latest)
	st.LatestUpdated, st.AnalysedUpdated = time.UnixMilli(latestUpdated), time.UnixMilli(analysedUpdated)
	if analysed != 0 {
		st.AnalysedAt = time.UnixMilli(analysed)
	}
	return st, nil
}

// MarkAnalysed records that delivery id's analysis, of subject, is now the
// thread's latest, unless a newer delivery's analysis already is (see
// Newer; updated is the thread's updated_at in id's payload).
func (s *Store) MarkAnalysed(ctx context.Context, thread string, id int64, updated time.Time, subject string) error {
	// The same delivery marked again (a retry) counts as newer: its id
	// plus one.
	_, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_threads SET analysed_delivery = ?, analysed_updated = ?, analysed_subject = ?, analysed_at = ?
		WHERE thread = ? AND `+newerSQL("CAST(? AS BIGINT)", "CAST(? AS BIGINT)", "analysed_delivery", "analysed_updated")),
		id, updated.UnixMilli(), subject, s.millis(), thread,
		// newerSQL's placeholders, in order: updated, id, updated, updated, id.
		updated.UnixMilli(), id+1, updated.UnixMilli(), updated.UnixMilli(), id+1)
	if err != nil {
		return fmt.Errorf("mark thread %s analysed: %w", thread, err)
	}
	return nil
}

// AnalysesSince counts the analyses of thread number of repo stored since.
func (s *Store) AnalysesSince(ctx context.Context, repo string, number int, since time.Time) (int, error) {
	var n int
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM hw_analyses WHERE repo = ? AND thread = ? AND created_at >= ?`),
		repo, number, since.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count analyses of %s#%d: %w", repo, number, err)
	}
	return n, nil
}

// Unplanned returns the deliveries of repo newer than id, of the given
// event.action names, that are queued and not yet planned: an older
// delivery of the same thread waits for them so that it cannot be analysed
// in their place. Payloads are read only for those.
func (s *Store) Unplanned(ctx context.Context, repo string, id int64, events []string) ([]Delivery, error) {
	if len(events) == 0 {
		return nil, nil
	}
	args := []any{repo, id, StatusQueued}
	marks := ""
	for i, e := range events {
		if i > 0 {
			marks += " OR "
		}
		event, action, _ := strings.Cut(e, ".")
		marks += "(event = ? AND action = ?)"
		args = append(args, event, action)
	}
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT `+deliveryColumns+`, payload, payload_codec FROM hw_deliveries
		WHERE repo = ? AND id > ? AND status = ? AND thread = '' AND (`+marks+`) ORDER BY id LIMIT 200`), args...)
	if err != nil {
		return nil, fmt.Errorf("unplanned deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows, true)
		if err != nil {
			return nil, fmt.Errorf("unplanned deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
