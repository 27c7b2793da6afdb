package store

import (
	"context"
	"fmt"
	"time"
)

// Pruned counts the rows one Prune deleted, by table.
type Pruned map[string]int64

// pruneChunk bounds the rows one statement deletes, so that a first prune
// of a large database does not hold long locks.
const pruneChunk = 5000

// Prune deletes what retention no longer keeps: handled deliveries
// (done, skipped, discarded) received before deliveries, with their
// answers and batch requests, the state of threads quiet since then and the comment ledger's
// rows not updated since then; ledger rows and alerts created before
// ledger; expired thread leases; and the per-author cap's admissions made
// before deliveries, with the lock rows of authors left without any. Dead
// letters and deliveries still in progress are kept whatever their age.
func (s *Store) Prune(ctx context.Context, deliveries, ledger time.Time) (Pruned, error) {
	out := Pruned{}
	d, l, now := deliveries.UnixMilli(), ledger.UnixMilli(), s.millis()
	steps := []struct {
		table, query string
		args         []any
	}{
		// Answers first, while their deliveries still say which go.
		{"hw_analyses", `DELETE FROM hw_analyses WHERE id IN (SELECT a.id FROM hw_analyses a JOIN hw_deliveries x
			ON x.id = a.delivery_id WHERE x.received_at < ? AND x.status IN (?, ?, ?) LIMIT ?)`,
			[]any{d, StatusDone, StatusSkipped, StatusDiscarded, pruneChunk}},
		{"hw_batch_items", `DELETE FROM hw_batch_items WHERE id IN (SELECT b.id FROM hw_batch_items b JOIN hw_deliveries x
			ON x.id = b.delivery_id WHERE x.received_at < ? AND x.status IN (?, ?, ?) LIMIT ?)`,
			[]any{d, StatusDone, StatusSkipped, StatusDiscarded, pruneChunk}},
		{"hw_deliveries", `DELETE FROM hw_deliveries WHERE id IN (SELECT id FROM hw_deliveries
			WHERE received_at < ? AND status IN (?, ?, ?) LIMIT ?)`, []any{d, StatusDone, StatusSkipped, StatusDiscarded, pruneChunk}},
		{"hw_threads", `DELETE FROM hw_threads WHERE thread IN (SELECT thread FROM hw_threads
			WHERE latest_at < ? AND analysed_at < ? LIMIT ?)`, []any{d, d, pruneChunk}},
		{"hw_writes", `DELETE FROM hw_writes WHERE key IN (SELECT key FROM hw_writes WHERE updated_at < ? LIMIT ?)`, []any{d, pruneChunk}},
		{"hw_usage", `DELETE FROM hw_usage WHERE id IN (SELECT id FROM hw_usage WHERE created_at < ? LIMIT ?)`, []any{l, pruneChunk}},
		{"hw_alerts", `DELETE FROM hw_alerts WHERE created_at < ?`, []any{l}},
		{"hw_thread_locks", `DELETE FROM hw_thread_locks WHERE expires_at < ?`, []any{now}},
		{"hw_author_admissions", `DELETE FROM hw_author_admissions WHERE delivery_id IN (SELECT delivery_id FROM hw_author_admissions
			WHERE created_at < ? LIMIT ?)`, []any{d, pruneChunk}},
		{"hw_author_locks", `DELETE FROM hw_author_locks WHERE author IN (SELECT l.author FROM hw_author_locks l
			WHERE NOT EXISTS (SELECT 1 FROM hw_author_admissions a WHERE a.author = l.author) LIMIT ?)`, []any{pruneChunk}},
	}
	for _, st := range steps {
		for {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			res, err := s.DB.ExecContext(ctx, s.q(st.query), st.args...)
			if err != nil {
				return out, fmt.Errorf("prune %s: %w", st.table, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return out, fmt.Errorf("prune %s: %w", st.table, err)
			}
			out[st.table] += n
			if n < pruneChunk {
				break
			}
		}
	}
	return out, nil
}
