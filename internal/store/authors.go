package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// AdmitAuthor decides whether delivery may be analysed under a cap of
// most analyses of author's threads since since: it counts the deliveries
// admitted for author since then and, below most, admits this one. A
// delivery admitted before is admitted again (a retry, a deferred delivery
// resumed) without counting twice. Admissions, not stored answers, are
// counted, so that analyses under way count too; and one author's
// admissions are serialised by a row lock, so that workers on any instance
// cannot pass the cap together. It returns whether delivery is admitted
// and how many admissions were counted before it.
func (s *Store) AdmitAuthor(ctx context.Context, author string, delivery int64, since time.Time, most int) (bool, int, error) {
	var admitted bool
	var n int
	err := s.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_author_locks (author, n) VALUES (?, 1)
			ON CONFLICT (author) DO UPDATE SET n = hw_author_locks.n + 1`), author); err != nil {
			return err
		}
		var again int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM hw_author_admissions WHERE delivery_id = ?`), delivery).Scan(&again); err != nil {
			return err
		}
		if again > 0 {
			admitted = true
			return nil
		}
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM hw_author_admissions WHERE author = ? AND created_at >= ?`),
			author, since.UnixMilli()).Scan(&n); err != nil {
			return err
		}
		if n >= most {
			return nil
		}
		admitted = true
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_author_admissions (delivery_id, author, created_at) VALUES (?, ?, ?)`),
			delivery, author, s.millis())
		return err
	})
	if err != nil {
		return false, 0, fmt.Errorf("admit an analysis of %s's threads: %w", author, err)
	}
	return admitted, n, nil
}
