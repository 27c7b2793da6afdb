package store

import (
	"io/fs"
	"testing/fstest"
)

// WithMigrations makes st know the migrations in files (NNN_name.sql at
// its root) instead of the ones built in: a test plays a hookwise of
// another release with it.
func WithMigrations(st *Store, files fs.FS) { st.migrationFiles = files }

// KnowOnly makes st a hookwise that knows the migrations up to version
// only, as a release from before the later ones does.
func KnowOnly(st *Store, version int) error {
	files, err := st.migrations()
	if err != nil {
		return err
	}
	older := fstest.MapFS{}
	for _, m := range files {
		if m.version <= version {
			older[m.name] = &fstest.MapFile{Data: []byte(m.sql)}
		}
	}
	st.migrationFiles = older
	return nil
}

// Migrations returns st's migrations as files, to build a test's set from.
func Migrations(st *Store) fs.FS { return st.migrationFiles }

// BuiltinFloors returns, per version, the oldest schema version that may
// run after each built-in migration of dialect.
func BuiltinFloors(dialect Dialect) (map[int]int, error) {
	st := &Store{migrationFiles: builtinMigrations(dialect)}
	files, err := st.migrations()
	if err != nil {
		return nil, err
	}
	out := map[int]int{}
	for _, m := range files {
		out[m.version] = m.readableBy
	}
	return out, nil
}

// ParseFloor parses a migration file as the migrator does and returns its
// floor.
func ParseFloor(name, body string) (int, error) {
	m, err := parseMigration(name, body)
	return m.readableBy, err
}
