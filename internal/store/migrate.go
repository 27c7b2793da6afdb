package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migrations live in migrations/sqlite and migrations/postgres, one file per
// schema version in each (NNN_name.sql, twins that keep in step), applied
// in order and recorded in hw_schema_migrations. A hookwise knows the
// versions up to its newest file.
//
// A fleet is upgraded one instance at a time: while it is, instances of the
// new release have migrated the shared database and instances of the
// previous release still run on it, restart and take jobs. So the rule for
// authors is:
//
//	A release reads every stored format that the previous release
//	writes, and starts writing a new format only in the release after.
//
// A new format therefore takes two releases: the first adds what it needs
// (a column, a codec) and reads both formats while writing the old one;
// the next writes the new one, and its instances meet only readers.
//
// Each migration says, on its first line, the oldest schema version a
// hookwise may know and still run on the database after it:
//
//	-- readable by: 8
//
// An additive migration (new tables, new columns that are nullable or have
// a default, new indexes), whose release writes nothing the previous
// release cannot read, is readable by the previous version. A migration
// without the line is readable only by a hookwise that knows it: its
// release is not rolling-compatible, and its README says so. The floor is
// recorded with the migration, so that an older hookwise, which does not
// have the file, can still tell whether it may run (see checkReadable).
// Twins declare the same floor.

//go:embed migrations
var migrationFS embed.FS

// readablePrefix starts the line that declares a migration's floor.
const readablePrefix = "-- readable by:"

type migration struct {
	version int
	name    string
	sql     string
	// readableBy is the oldest schema version a hookwise may know and run
	// on the database after this migration: version itself when the file
	// declares none.
	readableBy int
}

// builtinMigrations returns the migrations of dialect that this hookwise
// embeds, as files at the root of the returned FS.
func builtinMigrations(dialect Dialect) fs.FS {
	sub, err := fs.Sub(migrationFS, "migrations/"+string(dialect))
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}

// migrations returns the migrations this Store knows, oldest first.
func (s *Store) migrations() ([]migration, error) {
	entries, err := fs.ReadDir(s.migrationFiles, ".")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		body, err := fs.ReadFile(s.migrationFiles, e.Name())
		if err != nil {
			return nil, err
		}
		m, err := parseMigration(e.Name(), string(body))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, errors.New("no migrations")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// parseMigration reads a migration's version from its file name and its
// floor from its first line.
func parseMigration(name, body string) (migration, error) {
	v, _, ok := strings.Cut(name, "_")
	version, err := strconv.Atoi(v)
	if !ok || err != nil || version < 1 {
		return migration{}, fmt.Errorf("migration %s: name must start with a number from 1 and _", name)
	}
	m := migration{version: version, name: name, sql: body, readableBy: version}
	first, rest, _ := strings.Cut(body, "\n")
	if strings.HasPrefix(first, readablePrefix) {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(first), readablePrefix)))
		if err != nil || n < 1 || n >= version {
			return migration{}, fmt.Errorf("migration %s: first line %q: want %q followed by a schema version from 1 to %d",
				name, first, readablePrefix, version-1)
		}
		m.readableBy = n
	}
	for line := range strings.Lines(rest) {
		if strings.HasPrefix(strings.TrimSpace(line), readablePrefix) {
			return migration{}, fmt.Errorf("migration %s: %q must be the first line", name, readablePrefix)
		}
	}
	return m, nil
}

// appliedMigration is a row of hw_schema_migrations.
type appliedMigration struct {
	version    int
	readableBy int // version itself when not recorded
}

// Migrate applies the migrations of our own tables that are not applied
// yet, and checks that this hookwise may run on the database.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.ensureMigrationsTable(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	files, err := s.migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, f := range files {
		if _, ok := applied[f.version]; ok {
			continue
		}
		err := s.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, f.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO hw_schema_migrations (version, applied_at, readable_by) VALUES (?, ?, ?)`),
				f.version, s.millis(), f.readableBy)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", f.name, err)
		}
	}
	// Migrations applied before floors were recorded get theirs from the
	// files, so that older hookwises can read them from now on.
	for _, f := range files {
		if _, err := s.DB.ExecContext(ctx, s.q(`UPDATE hw_schema_migrations SET readable_by = ? WHERE version = ? AND readable_by IS NULL`),
			f.readableBy, f.version); err != nil {
			return fmt.Errorf("migrate: record the floor of %s: %w", f.name, err)
		}
	}
	if applied, err = s.appliedMigrations(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return checkReadable(files, applied)
}

// ensureMigrationsTable creates hw_schema_migrations, or adds the floor
// column to one created before floors were recorded. Both keep the columns
// an older hookwise writes.
func (s *Store) ensureMigrationsTable(ctx context.Context) error {
	if _, err := s.DB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS hw_schema_migrations
		(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL, readable_by INTEGER)`); err != nil {
		return err
	}
	// Looked up first: on PostgreSQL even an ALTER that changes nothing
	// locks the table, which every instance's readiness check reads.
	if has, err := s.hasFloorColumn(ctx); err != nil || has {
		return err
	}
	_, err := s.DB.ExecContext(ctx, `ALTER TABLE hw_schema_migrations ADD COLUMN readable_by INTEGER`)
	return err
}

// hasFloorColumn reports whether hw_schema_migrations records floors: a
// hookwise older than them created it without the column.
func (s *Store) hasFloorColumn(ctx context.Context) (bool, error) {
	if s.floorColumn.Load() {
		return true, nil // a column once added stays: readiness asks every second
	}
	hasColumn := `SELECT COUNT(*) FROM pragma_table_info('hw_schema_migrations') WHERE name = 'readable_by'`
	if s.Dialect == Postgres {
		hasColumn = `SELECT COUNT(*) FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'hw_schema_migrations' AND column_name = 'readable_by'`
	}
	var n int
	err := s.DB.QueryRowContext(ctx, hasColumn).Scan(&n)
	s.floorColumn.Store(n > 0)
	return n > 0, err
}

// appliedMigrations reads hw_schema_migrations, by version; a migration
// recorded without a floor is readable only by a hookwise that knows it.
func (s *Store) appliedMigrations(ctx context.Context) (map[int]appliedMigration, error) {
	query := `SELECT version, COALESCE(readable_by, version) FROM hw_schema_migrations`
	if has, err := s.hasFloorColumn(ctx); err == nil && !has {
		query = `SELECT version, version FROM hw_schema_migrations`
	}
	rows, err := s.DB.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	defer rows.Close()
	out := map[int]appliedMigration{}
	for rows.Next() {
		var m appliedMigration
		if err := rows.Scan(&m.version, &m.readableBy); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		out[m.version] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return out, nil
}

// checkReadable refuses a database that a newer hookwise has migrated past
// what this one knows, unless every migration this one does not know
// declares it readable by this one's version. Otherwise its rows may be
// written in ways this one cannot read (compressed payloads, new columns
// it would not maintain), and it would handle them wrongly rather than
// fail.
func checkReadable(files []migration, applied map[int]appliedMigration) error {
	known := files[len(files)-1].version
	// The hookwises that may run are those from oldest on (see
	// schemaVersions): every migration above any of them is readable by it.
	newest, oldest := schemaVersions(applied)
	if oldest <= known {
		return nil
	}
	unreadable := newest
	for _, m := range applied {
		if m.version > known && m.readableBy > known {
			unreadable = min(unreadable, m.version)
		}
	}
	return fmt.Errorf("database: schema version %d is newer than this hookwise knows (%d), and migration %d is not readable by it: "+
		"run a hookwise that knows schema version %d or later", newest, known, unreadable, oldest)
}

// schemaVersions returns the newest applied schema version and the oldest
// version a hookwise may know and still run on the database: the least k
// such that every applied migration above k is readable by k.
func schemaVersions(applied map[int]appliedMigration) (newest, oldest int) {
	for v := range applied {
		newest = max(newest, v)
	}
	oldest = newest
	for oldest > 1 {
		k := oldest - 1
		for _, m := range applied {
			if m.version > k && m.readableBy > k {
				return newest, oldest
			}
		}
		oldest = k
	}
	return newest, oldest
}

// SchemaState is what a database's schema is, and which hookwises may run
// on it.
type SchemaState struct {
	Version int // the newest migration applied; 0 before any
	Known   int // the newest this hookwise knows
	// OldestReader is the oldest schema version a hookwise may know and
	// still run on the database: during a rolling upgrade, instances of
	// the previous release keep running when it is at most theirs.
	OldestReader int
}

// String says the state for an operator.
func (st SchemaState) String() string {
	s := fmt.Sprintf("schema version %d (this hookwise knows %d)", st.Version, st.Known)
	switch {
	case st.Version == 0:
		return s + "; no migration applied"
	case st.OldestReader > st.Known:
		return s + fmt.Sprintf("; this hookwise cannot run on it: a hookwise that knows schema version %d or later can", st.OldestReader)
	case st.OldestReader == st.Version:
		return s + fmt.Sprintf("; only a hookwise that knows schema version %d or later can run on it: an older one refuses to start", st.Version)
	}
	return s + fmt.Sprintf("; a hookwise that knows schema version %d or later can run on it", st.OldestReader)
}

// CheckSchema says, changing nothing, why this hookwise cannot work on the
// database as it is, and what to run: no hookwise schema yet, migrations
// this hookwise knows not applied, or a newer schema it cannot read. nil
// when it can.
func (s *Store) CheckSchema(ctx context.Context) error {
	files, err := s.migrations()
	if err != nil {
		return err
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil || len(applied) == 0 {
		return errors.New("database: no hookwise schema yet: run `hookwise migrate` (or start `hookwise serve`, which migrates)")
	}
	missing := 0
	for _, f := range files {
		if _, ok := applied[f.version]; !ok {
			missing++
		}
	}
	if missing > 0 {
		newest, _ := schemaVersions(applied)
		return fmt.Errorf("database: schema version %d, %d migrations behind what this hookwise knows (%d): run `hookwise migrate` with this hookwise first",
			newest, missing, files[len(files)-1].version)
	}
	return checkReadable(files, applied)
}

// Schema reports the database's schema state.
func (s *Store) Schema(ctx context.Context) (SchemaState, error) {
	files, err := s.migrations()
	if err != nil {
		return SchemaState{}, err
	}
	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return SchemaState{}, err
	}
	st := SchemaState{Known: files[len(files)-1].version}
	st.Version, st.OldestReader = schemaVersions(applied)
	return st, nil
}
