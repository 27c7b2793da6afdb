package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// CostQuery selects usage ledger rows and how to group them.
type CostQuery struct {
	// By groups the rows: "day" (UTC date, "2026-11-29"), "repo", "model",
	// "event" ("issues.opened"), "kind" (of analysis), or "" for one row
	// holding the total.
	By string
	// Since and Until bound created_at to [Since, Until); zero is unbounded.
	Since, Until time.Time
	// Repo keeps only this repository's rows; "" keeps all.
	Repo string
}

// CostRow is what the model calls of one group used and cost.
type CostRow struct {
	Key              string  `json:"key"`
	Calls            int64   `json:"calls"`
	InputTokens      int64   `json:"input_tokens"`
	OutputTokens     int64   `json:"output_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	CacheReadTokens  int64   `json:"cache_read_tokens"`
	CostMicros       int64   `json:"-"`
	CostUSD          float64 `json:"cost_usd"` // CostMicros / 1e6
	BatchCalls       int64   `json:"batch_calls"`
}

func (r *CostRow) add(o CostRow) {
	r.Calls += o.Calls
	r.InputTokens += o.InputTokens
	r.OutputTokens += o.OutputTokens
	r.CacheWriteTokens += o.CacheWriteTokens
	r.CacheReadTokens += o.CacheReadTokens
	r.CostMicros += o.CostMicros
	r.CostUSD = float64(r.CostMicros) / 1e6
	r.BatchCalls += o.BatchCalls
}

// millisPerDay groups by UTC day with integer division, which SQLite and
// PostgreSQL agree on: Unix time has no leap seconds, so every UTC day
// starts at a multiple of it, and no date function of either dialect is
// needed.
const millisPerDay = 24 * 60 * 60 * 1000

// costGroups maps CostQuery.By to the SQL expression rows are grouped by.
var costGroups = map[string]string{
	"day":   "created_at / " + strconv.Itoa(millisPerDay),
	"repo":  "repo",
	"model": "model",
	"event": "event",
	"kind":  "kind",
}

// CheckCostGroup returns an error naming the allowed values unless by is
// one CostQuery.By takes.
func CheckCostGroup(by string) error {
	if _, ok := costGroups[by]; ok || by == "" {
		return nil
	}
	return fmt.Errorf("cannot group costs by %q: want day, repo, model, event or kind", by)
}

// Costs sums the settled rows of the usage ledger that q selects, per group,
// and over all of them. Reservations not settled yet are left out: their
// cost is an estimate and their tokens unknown. Days come in date order;
// other groups by cost, highest first, then by key.
func (s *Store) Costs(ctx context.Context, q CostQuery) (rows []CostRow, total CostRow, err error) {
	if err := CheckCostGroup(q.By); err != nil {
		return nil, CostRow{}, err
	}
	key := "''"
	if q.By != "" {
		key = costGroups[q.By]
	}
	query := `SELECT ` + key + `, COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
		COALESCE(SUM(cache_write_tokens), 0), COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cost_micros), 0),
		COALESCE(SUM(CASE WHEN batch <> 0 THEN 1 ELSE 0 END), 0)
		FROM hw_usage WHERE outcome <> 'reserved'`
	var args []any
	if !q.Since.IsZero() {
		query += ` AND created_at >= ?`
		args = append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		query += ` AND created_at < ?`
		args = append(args, q.Until.UnixMilli())
	}
	if q.Repo != "" {
		query += ` AND repo = ?`
		args = append(args, q.Repo)
	}
	if q.By != "" {
		// Without GROUP BY the query answers one row, zeros when nothing
		// matches: the total row "" asks for.
		query += ` GROUP BY ` + key
	}
	res, err := s.DB.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, CostRow{}, fmt.Errorf("costs: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var r CostRow
		if err := res.Scan(&r.Key, &r.Calls, &r.InputTokens, &r.OutputTokens, &r.CacheWriteTokens,
			&r.CacheReadTokens, &r.CostMicros, &r.BatchCalls); err != nil {
			return nil, CostRow{}, fmt.Errorf("costs: %w", err)
		}
		if q.By == "day" {
			day, err := strconv.ParseInt(r.Key, 10, 64)
			if err != nil {
				return nil, CostRow{}, fmt.Errorf("costs: day %q: %w", r.Key, err)
			}
			r.Key = time.UnixMilli(day * millisPerDay).UTC().Format(time.DateOnly)
		}
		r.CostUSD = float64(r.CostMicros) / 1e6
		total.add(r)
		rows = append(rows, r)
	}
	if err := res.Err(); err != nil {
		return nil, CostRow{}, fmt.Errorf("costs: %w", err)
	}
	slices.SortFunc(rows, func(a, b CostRow) int {
		if q.By == "day" {
			return cmp.Compare(a.Key, b.Key)
		}
		return cmp.Or(cmp.Compare(b.CostMicros, a.CostMicros), cmp.Compare(a.Key, b.Key))
	})
	return rows, total, nil
}
