package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwise/hookwise/internal/logtest"
	"github.com/hookwise/hookwise/internal/store"
	"github.com/hookwise/hookwise/internal/store/storetest"
)

// Commands other than serve and migrate change no database: on a missing
// one, or one at an older schema, they fail saying what to run, and leave
// it as it was.
func TestReadOnlyCommandsDoNotMigrate(t *testing.T) {
	t.Setenv("HOOKWISE_CONFIG", "")
	commands := [][]string{{"costs"}, {"deliveries", "list"}, {"dlq", "list"}, {"replay", "guid-1"}}

	missing := filepath.Join(t.TempDir(), "none.db")
	t.Setenv("HOOKWISE_DATABASE_URL", missing)
	for _, args := range commands {
		var out, errOut logtest.Buffer
		err := run(args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "run `hookwise migrate`") {
			t.Errorf("%v on no database = %v, want an error saying to run hookwise migrate", args, err)
		}
		if _, serr := os.Stat(missing); !os.IsNotExist(serr) {
			t.Fatalf("%v created %s", args, missing)
		}
	}

	old := filepath.Join(t.TempDir(), "v8.db")
	storetest.LoadFixture(t, old, "v8")
	t.Setenv("HOOKWISE_DATABASE_URL", old)
	for _, args := range commands {
		var out, errOut logtest.Buffer
		err := run(args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "schema version 8") || !strings.Contains(err.Error(), "run `hookwise migrate`") {
			t.Errorf("%v on a schema-8 database = %v, want an error naming version 8 and saying to run hookwise migrate", args, err)
		}
	}
	st, err := store.Open(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if state, err := st.Schema(context.Background()); err != nil || state.Version != 8 {
		t.Errorf("after the commands the database is at %+v, %v; want schema version 8 still", state, err)
	}
}
