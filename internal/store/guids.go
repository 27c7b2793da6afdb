package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// guidChunk is how many GUIDs one query asks about: far below SQLite's and
// PostgreSQL's limits on bound parameters, and a statement that stays small.
const guidChunk = 500

// KnownGUIDs reports which of guids hookwise has stored a delivery for,
// through any hook. The result holds only the known ones, each true.
func (s *Store) KnownGUIDs(ctx context.Context, guids []string) (map[string]bool, error) {
	known := make(map[string]bool)
	seen := make(map[string]bool, len(guids))
	uniq := make([]string, 0, len(guids))
	for _, g := range guids {
		if !seen[g] {
			seen[g] = true
			uniq = append(uniq, g)
		}
	}
	for len(uniq) > 0 {
		chunk := uniq[:min(guidChunk, len(uniq))]
		uniq = uniq[len(chunk):]
		args := make([]any, len(chunk))
		for i, g := range chunk {
			args[i] = g
		}
		query := `SELECT DISTINCT guid FROM hw_deliveries WHERE guid IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `)`
		if err := s.knownGUIDs(ctx, s.q(query), args, known); err != nil {
			return nil, fmt.Errorf("known guids: %w", err)
		}
	}
	return known, nil
}

func (s *Store) knownGUIDs(ctx context.Context, query string, args []any, known map[string]bool) error {
	rows, err := s.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return err
		}
		known[g] = true
	}
	return rows.Err()
}

// SeenHook is a webhook that delivered to hookwise: its id, the kind of
// target it belongs to (X-GitHub-Hook-Installation-Target-Type) and a
// repository it delivered for.
type SeenHook struct {
	HookID string
	Target string // repository, organization or integration
	Repo   string
}

// SeenHooks lists the hooks that delivered since a time, one row per hook
// and target, for the redelivery sweeper to find its hooks by itself.
func (s *Store) SeenHooks(ctx context.Context, since time.Time) ([]SeenHook, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT hook_id, hook_target, MAX(repo) FROM hw_deliveries
		WHERE received_at >= ? AND hook_id <> '' AND hook_target <> '' GROUP BY hook_id, hook_target ORDER BY hook_id`),
		since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("seen hooks: %w", err)
	}
	defer rows.Close()
	var out []SeenHook
	for rows.Next() {
		var h SeenHook
		if err := rows.Scan(&h.HookID, &h.Target, &h.Repo); err != nil {
			return nil, fmt.Errorf("seen hooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}
