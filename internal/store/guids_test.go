package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

func TestKnownGUIDs(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		d := func(hook, guid string) store.Delivery {
			return store.Delivery{HookID: hook, GUID: guid, Event: "issues", Payload: []byte(`{}`), ReceivedAt: time.Now()}
		}
		// 1200 stored GUIDs make the lookups below span several chunks; "shared"
		// is stored through two hooks and must still come back once.
		var ds []store.Delivery
		for i := range 1200 {
			ds = append(ds, d("1", fmt.Sprintf("g%04d", i)))
		}
		ds = append(ds, d("1", "shared"), d("2", "shared"))
		insert(t, st, ds...)

		var ask []string
		for i := 0; i < 2400; i += 2 { // every other one is unknown
			ask = append(ask, fmt.Sprintf("g%04d", i))
		}
		ask = append(ask, "shared", "shared", "nope", "g0000")

		tests := []struct {
			name  string
			guids []string
			want  int
		}{
			{"none", nil, 0},
			{"unknown", []string{"nope"}, 0},
			{"one", []string{"g0001"}, 1},
			{"chunked with duplicates", ask, 600 + 1},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := st.KnownGUIDs(ctx, tc.guids)
				if err != nil {
					t.Fatalf("KnownGUIDs: %v", err)
				}
				if len(got) != tc.want {
					t.Errorf("KnownGUIDs(%d guids) = %d known, want %d", len(tc.guids), len(got), tc.want)
				}
				for g := range got {
					if g == "nope" || (len(g) == 5 && g[0] == 'g' && g >= "g1200") {
						t.Errorf("KnownGUIDs reports %q known, want unknown", g)
					}
				}
			})
		}
		got, _ := st.KnownGUIDs(ctx, ask)
		for _, g := range []string{"g0000", "g1198", "shared"} {
			if !got[g] {
				t.Errorf("KnownGUIDs(...)[%q] = false, want true", g)
			}
		}
	})
}
