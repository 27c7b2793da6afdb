package store_test

import (
	"maps"
	"testing"

	"github.com/hookwise/hookwise/internal/store"
)

// The twins declare the same floors, and the additive migrations among the
// first nine are marked readable by the version before them.
func TestMigrationFloors(t *testing.T) {
	t.Parallel()
	sqlite, err := store.BuiltinFloors(store.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	postgres, err := store.BuiltinFloors(store.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(sqlite, postgres) {
		t.Errorf("floors: SQLite %v, PostgreSQL %v; want the twins to agree", sqlite, postgres)
	}
	for version, want := range map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 5, 7: 7, 8: 8, 9: 8} {
		if sqlite[version] != want {
			t.Errorf("migration %d is readable by %d, want %d", version, sqlite[version], want)
		}
	}
}

func TestParseFloor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       int
		ok         bool
	}{
		{"009_author.sql", "-- readable by: 8\nCREATE TABLE t (id INTEGER);\n", 8, true},
		{"009_author.sql", "-- readable by:   3  \nCREATE TABLE t (id INTEGER);\n", 3, true},
		{"009_author.sql", "CREATE TABLE t (id INTEGER);\n", 9, true},
		{"009_author.sql", "-- Adds a table.\nCREATE TABLE t (id INTEGER);\n", 9, true},
		{"009_author.sql", "", 9, true},
		// A floor at or above its own version, or none at all.
		{"009_author.sql", "-- readable by: 9\n", 0, false},
		{"009_author.sql", "-- readable by: 12\n", 0, false},
		{"009_author.sql", "-- readable by: 0\n", 0, false},
		{"009_author.sql", "-- readable by: -1\n", 0, false},
		{"009_author.sql", "-- readable by: eight\n", 0, false},
		{"009_author.sql", "-- readable by:\n", 0, false},
		{"009_author.sql", "-- readable by: 8; and 7\n", 0, false},
		// Anywhere but the first line it would be ignored: refused.
		{"009_author.sql", "-- Adds a table.\n-- readable by: 8\nCREATE TABLE t (id INTEGER);\n", 0, false},
		{"009_author.sql", "-- readable by: 8\nCREATE TABLE t (id INTEGER);\n  -- readable by: 7\n", 0, false},
		// Names without a version.
		{"author.sql", "", 0, false},
		{"x9_author.sql", "", 0, false},
		{"000_zero.sql", "", 0, false},
	}
	for _, tt := range tests {
		got, err := store.ParseFloor(tt.name, tt.body)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseFloor(%s, %q) = %d, %v; want %d", tt.name, tt.body, got, err, tt.want)
		}
		if !tt.ok && err == nil {
			t.Errorf("ParseFloor(%s, %q) = %d, nil; want an error", tt.name, tt.body, got)
		}
	}
}

func TestSchemaStateString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state store.SchemaState
		want  string
	}{
		{store.SchemaState{Version: 9, Known: 9, OldestReader: 8},
			"schema version 9 (this hookwise knows 9); a hookwise that knows schema version 8 or later can run on it"},
		{store.SchemaState{Version: 9, Known: 8, OldestReader: 8},
			"schema version 9 (this hookwise knows 8); a hookwise that knows schema version 8 or later can run on it"},
		{store.SchemaState{Version: 7, Known: 9, OldestReader: 7},
			"schema version 7 (this hookwise knows 9); only a hookwise that knows schema version 7 or later can run on it: an older one refuses to start"},
		{store.SchemaState{Version: 11, Known: 9, OldestReader: 11},
			"schema version 11 (this hookwise knows 9); this hookwise cannot run on it: a hookwise that knows schema version 11 or later can"},
		{store.SchemaState{Known: 9}, "schema version 0 (this hookwise knows 9); no migration applied"},
	}
	for _, tt := range tests {
		if got := tt.state.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.state, got, tt.want)
		}
	}
}
