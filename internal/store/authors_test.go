package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

func TestAdmitAuthor(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		since := time.Now().Add(-time.Hour)
		steps := []struct {
			author   string
			delivery int64
			want     bool
			wantN    int
		}{
			{"mallory", 1, true, 0},
			{"mallory", 2, true, 1},
			{"mallory", 3, false, 2},
			{"mallory", 2, true, 0}, // admitted before: a retry
			{"alice", 4, true, 0},   // someone else
			{"mallory", 5, false, 2},
		}
		for i, s := range steps {
			ok, n, err := st.AdmitAuthor(ctx, s.author, s.delivery, since, 2)
			if err != nil || ok != s.want || (!ok && n != s.wantN) {
				t.Errorf("step %d: AdmitAuthor(%s, %d, max 2) = %v, %d, %v; want %v, %d", i, s.author, s.delivery, ok, n, err, s.want, s.wantN)
			}
		}
		// Admissions before the window do not count.
		if ok, _, err := st.AdmitAuthor(ctx, "mallory", 6, time.Now().Add(time.Minute), 2); !ok || err != nil {
			t.Errorf("AdmitAuthor(window after the earlier admissions) = %v, %v; want admitted", ok, err)
		}
	})
}

// TestAdmitAuthorConcurrently: many workers, on two handles of one database
// as two instances have, admit exactly the cap.
func TestAdmitAuthorConcurrently(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, _, url string) {
		handles := []*store.Store{openURL(t, url), openURL(t, url)}
		const workers, most = 40, 10
		var mu sync.Mutex
		admitted := 0
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				ok, _, err := handles[i%2].AdmitAuthor(context.Background(), "mallory", int64(100+i), time.Now().Add(-time.Hour), most)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if admitted != most {
			t.Errorf("%d concurrent AdmitAuthor calls admitted %d, want exactly %d", workers, admitted, most)
		}
	})
}

func TestPruneAuthorAdmissions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now()
		if ok, _, err := st.AdmitAuthor(ctx, "alice", 1, now.Add(-time.Hour), 5); !ok || err != nil {
			t.Fatalf("AdmitAuthor = %v, %v", ok, err)
		}
		if _, _, err := st.AdmitAuthor(ctx, "mallory", 2, now.Add(-time.Hour), 5); err != nil {
			t.Fatal(err)
		}
		// mallory's admission is from long ago.
		if _, err := st.DB.ExecContext(ctx, st.Rebind(`UPDATE hw_author_admissions SET created_at = ? WHERE author = 'mallory'`),
			now.Add(-40*24*time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		pruned, err := st.Prune(ctx, now.Add(-30*24*time.Hour), now.Add(-32*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if pruned["hw_author_admissions"] != 1 || pruned["hw_author_locks"] != 1 {
			t.Errorf("Prune = %v, want mallory's admission and lock row gone", pruned)
		}
		if ok, n, err := st.AdmitAuthor(ctx, "alice", 3, now.Add(-time.Hour), 1); ok || n != 1 || err != nil {
			t.Errorf("AdmitAuthor(alice, max 1) after Prune = %v, %d, %v; want her recent admission kept and counted", ok, n, err)
		}
	})
}
