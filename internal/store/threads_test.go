package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

func TestNoteThread(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const thread = "acme/app#7"
		d := func(guid string) store.Delivery {
			return store.Delivery{HookID: "1", GUID: guid, Event: "issues", Repo: "acme/app", Payload: []byte(`{}`), ReceivedAt: time.Now()}
		}
		ids := insert(t, st, d("one"), d("two"), d("three"))
		at := func(i int) time.Time { return time.UnixMilli(1_700_000_000_000 + int64(i)*1000) }
		if _, err := st.Thread(ctx, thread); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Thread(%s) before any note = %v, want ErrNotFound", thread, err)
		}
		// The second delivery is noted first; the first arrives late and
		// must not take the thread back.
		steps := []struct {
			note       int
			wantLatest int
		}{{1, 1}, {0, 1}, {2, 2}, {1, 2}}
		for _, s := range steps {
			got, err := st.NoteThread(ctx, thread, ids[s.note], at(s.note), at(s.note))
			if err != nil {
				t.Fatalf("NoteThread(%d): %v", ids[s.note], err)
			}
			if got.Thread != thread || got.LatestDelivery != ids[s.wantLatest] || !got.LatestAt.Equal(at(s.wantLatest)) {
				t.Errorf("NoteThread(%d) = %s latest %d at %v, want %s latest %d at %v",
					ids[s.note], got.Thread, got.LatestDelivery, got.LatestAt, thread, ids[s.wantLatest], at(s.wantLatest))
			}
			if got.AnalysedDelivery != 0 || got.AnalysedSubject != "" || !got.AnalysedAt.IsZero() {
				t.Errorf("NoteThread(%d) analysed = %d %q %v, want none yet", ids[s.note], got.AnalysedDelivery, got.AnalysedSubject, got.AnalysedAt)
			}
		}
		for _, id := range ids {
			got, err := st.Delivery(ctx, id)
			if err != nil || got.Thread != thread {
				t.Errorf("Delivery(%d).Thread = %q, %v; want %q", id, got.Thread, err, thread)
			}
		}
		got, err := st.Thread(ctx, thread)
		if err != nil || got.LatestDelivery != ids[2] {
			t.Errorf("Thread(%s) = latest %d, %v; want %d", thread, got.LatestDelivery, err, ids[2])
		}

		// A redelivery of an old event comes last, with the newest id, but
		// its payload shows the thread as it was: it is not the latest.
		late := insert(t, st, d("one-redelivered"))[0]
		got, err = st.NoteThread(ctx, thread, late, time.Now(), at(0))
		if err != nil || got.LatestDelivery != ids[2] || !got.LatestUpdated.Equal(at(2)) {
			t.Errorf("NoteThread(redelivery of an old event) = latest %d updated %v, %v; want %d updated %v",
				got.LatestDelivery, got.LatestUpdated, err, ids[2], at(2))
		}
	})
}

func TestNewer(t *testing.T) {
	t.Parallel()
	t0 := time.UnixMilli(1_700_000_000_000)
	for _, tc := range []struct {
		aUpdated time.Time
		a        int64
		bUpdated time.Time
		b        int64
		want     bool
	}{
		{t0.Add(time.Second), 1, t0, 2, true},  // updated later, older id
		{t0, 2, t0.Add(time.Second), 1, false}, // a redelivery: newer id, older state
		{t0, 2, t0, 1, true},                   // the same second: the later delivery
		{t0, 1, t0, 1, false},
	} {
		if got := store.Newer(tc.aUpdated, tc.a, tc.bUpdated, tc.b); got != tc.want {
			t.Errorf("Newer(%v, %d, %v, %d) = %v, want %v", tc.aUpdated, tc.a, tc.bUpdated, tc.b, got, tc.want)
		}
	}
}

func TestMarkAnalysed(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ids := insert(t, st, store.Delivery{HookID: "1", GUID: "a", Event: "pull_request", Repo: "acme/app", Payload: []byte(`{}`), ReceivedAt: time.Now()})
		updated := time.UnixMilli(1_700_000_000_000)
		if _, err := st.NoteThread(ctx, "acme/app#3", ids[0], time.Now(), updated); err != nil {
			t.Fatal(err)
		}
		before := time.Now().Truncate(time.Millisecond)
		if err := st.MarkAnalysed(ctx, "acme/app#3", ids[0], updated, "head 1a2b3c"); err != nil {
			t.Fatalf("MarkAnalysed: %v", err)
		}
		after := time.Now()
		got, err := st.Thread(ctx, "acme/app#3")
		if err != nil {
			t.Fatalf("Thread: %v", err)
		}
		if got.AnalysedDelivery != ids[0] || got.AnalysedSubject != "head 1a2b3c" {
			t.Errorf("Thread after MarkAnalysed = analysed %d %q, want %d %q", got.AnalysedDelivery, got.AnalysedSubject, ids[0], "head 1a2b3c")
		}
		if got.AnalysedAt.Before(before) || got.AnalysedAt.After(after) {
			t.Errorf("Thread after MarkAnalysed AnalysedAt = %v, want between %v and %v", got.AnalysedAt, before, after)
		}
		if got.LatestDelivery != ids[0] {
			t.Errorf("Thread after MarkAnalysed LatestDelivery = %d, want %d (unchanged)", got.LatestDelivery, ids[0])
		}
		// An analysis of an older state (a redelivery: a newer id, an
		// earlier updated_at) does not replace it.
		if err := st.MarkAnalysed(ctx, "acme/app#3", ids[0]+100, updated.Add(-time.Minute), "head 0ld"); err != nil {
			t.Fatalf("MarkAnalysed(older state): %v", err)
		}
		if got, err := st.Thread(ctx, "acme/app#3"); err != nil || got.AnalysedDelivery != ids[0] || got.AnalysedSubject != "head 1a2b3c" {
			t.Errorf("Thread after marking an older state = analysed %d %q, %v; want %d %q", got.AnalysedDelivery, got.AnalysedSubject, err, ids[0], "head 1a2b3c")
		}
		// Marking a thread never noted changes nothing and creates nothing.
		if err := st.MarkAnalysed(ctx, "acme/app#4", ids[0], updated, "x"); err != nil {
			t.Fatalf("MarkAnalysed(unknown thread): %v", err)
		}
		if _, err := st.Thread(ctx, "acme/app#4"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Thread(unknown, marked) = %v, want ErrNotFound", err)
		}
	})
}

func TestAnalysesSince(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		save := func(delivery int64, repo string, thread int) {
			t.Helper()
			err := st.SaveAnalysis(ctx, store.Analysis{DeliveryID: delivery, Repo: repo, Thread: thread, Kind: "issue",
				Model: "claude-sonnet-4-5", Result: `{}`})
			if err != nil {
				t.Fatalf("SaveAnalysis(%d): %v", delivery, err)
			}
		}
		start := time.Now().Add(-time.Second)
		save(1, "acme/app", 1)
		save(2, "acme/app", 2)
		save(3, "acme/lib", 1)
		// created_at is in milliseconds: keep mark clear of both sides.
		time.Sleep(5 * time.Millisecond)
		mark := time.Now()
		time.Sleep(5 * time.Millisecond)
		save(4, "acme/app", 1)
		save(4, "acme/app", 1) // a second answer for one delivery is ignored
		tests := []struct {
			repo   string
			thread int
			since  time.Time
			want   int
		}{
			{"acme/app", 1, start, 2},
			{"acme/app", 1, mark, 1},
			{"acme/app", 1, time.Now().Add(time.Hour), 0},
			{"acme/app", 2, start, 1},
			{"acme/app", 2, mark, 0},
			{"acme/lib", 1, start, 1},
			{"acme/lib", 2, start, 0},
			{"other/app", 1, start, 0},
		}
		for _, tt := range tests {
			got, err := st.AnalysesSince(ctx, tt.repo, tt.thread, tt.since)
			if err != nil || got != tt.want {
				t.Errorf("AnalysesSince(%s, %d, %v) = %d, %v; want %d", tt.repo, tt.thread, tt.since, got, err, tt.want)
			}
		}
	})
}

func TestUnplanned(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		d := func(guid, repo, event string) store.Delivery {
			return store.Delivery{HookID: "1", GUID: guid, Event: event, Action: "edited", Repo: repo,
				Payload: []byte(`{"guid":"` + guid + `"}`), ReceivedAt: time.Now()}
		}
		ids := insert(t, st,
			d("older", "acme/app", "issues"),          // 0: not newer than the reference
			d("ref", "acme/app", "issues"),            // 1: the reference
			d("newer", "acme/app", "issues"),          // 2: wanted
			d("comment", "acme/app", "issue_comment"), // 3: wanted
			d("pr", "acme/app", "pull_request"),       // 4: another event
			d("lib", "acme/lib", "issues"),            // 5: another repository
			d("planned", "acme/app", "issues"),        // 6: already planned
			d("done", "acme/app", "issues"),           // 7: not queued
			d("last", "acme/app", "issues"),           // 8: wanted
			store.Delivery{HookID: "1", GUID: "opened", Event: "issues", Action: "opened", Repo: "acme/app",
				Payload: []byte(`{}`), ReceivedAt: time.Now()}, // 9: another action
		)
		if _, err := st.NoteThread(ctx, "acme/app#1", ids[6], time.Now(), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := st.SetDeliveryStatus(ctx, ids[7], store.StatusDone, "handled"); err != nil {
			t.Fatal(err)
		}
		got, err := st.Unplanned(ctx, "acme/app", ids[1], []string{"issues.edited", "issue_comment.edited"})
		if err != nil {
			t.Fatalf("Unplanned: %v", err)
		}
		var gotIDs []int64
		for _, g := range got {
			gotIDs = append(gotIDs, g.ID)
			if want := `{"guid":"` + g.GUID + `"}`; string(g.Payload) != want {
				t.Errorf("Unplanned delivery %d payload = %s, want %s", g.ID, g.Payload, want)
			}
			if g.Repo != "acme/app" || g.Status != store.StatusQueued || g.Thread != "" {
				t.Errorf("Unplanned delivery %d = %s %s thread %q, want acme/app queued unplanned", g.ID, g.Repo, g.Status, g.Thread)
			}
		}
		if want := []int64{ids[2], ids[3], ids[8]}; !slices.Equal(gotIDs, want) {
			t.Errorf("Unplanned(acme/app, after %d, issues and issue_comment) = %v, want %v", ids[1], gotIDs, want)
		}
		if got, err := st.Unplanned(ctx, "acme/app", ids[1], nil); err != nil || len(got) != 0 {
			t.Errorf("Unplanned(no events) = %v, %v; want none", got, err)
		}
		if got, err := st.Unplanned(ctx, "acme/app", ids[9], []string{"issues.edited"}); err != nil || len(got) != 0 {
			t.Errorf("Unplanned(after the newest) = %v, %v; want none", got, err)
		}
	})
}

// A thread noted before migration 008 has no updated_at (0): ids order its
// deliveries, as they did before, until a delivery with one is noted.
func TestThreadNotedBefore008(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const thread = "acme/app#9"
		ids := insert(t, st,
			store.Delivery{HookID: "1", GUID: "older", Event: "issues", Repo: "acme/app", Payload: []byte(`{}`), ReceivedAt: time.Now()},
			store.Delivery{HookID: "1", GUID: "newer", Event: "issues", Repo: "acme/app", Payload: []byte(`{}`), ReceivedAt: time.Now()})
		// As 008 leaves a thread that existed: latest and analysed, no updated_at.
		if _, err := st.DB.ExecContext(ctx, st.Rebind(`INSERT INTO hw_threads (thread, latest_delivery, latest_at, analysed_delivery, analysed_subject)
			VALUES (?, ?, 0, ?, 'newer text')`), thread, ids[1], ids[1]); err != nil {
			t.Fatal(err)
		}
		// The older delivery's retry comes with a real updated_at: it does not
		// take the thread back, nor replace the newer analysis.
		got, err := st.NoteThread(ctx, thread, ids[0], time.Now(), time.Now())
		if err != nil || got.LatestDelivery != ids[1] {
			t.Errorf("NoteThread(older, after 008) = latest %d, %v; want %d", got.LatestDelivery, err, ids[1])
		}
		if store.Newer(got.AnalysedUpdated, got.AnalysedDelivery, time.Now(), ids[0]) != true {
			t.Errorf("Newer(analysed before 008, older delivery) = false, want true: ids decide")
		}
		if err := st.MarkAnalysed(ctx, thread, ids[0], time.Now(), "older text"); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Thread(ctx, thread); got.AnalysedDelivery != ids[1] || got.AnalysedSubject != "newer text" {
			t.Errorf("after MarkAnalysed(older) = analysed %d %q, want %d %q", got.AnalysedDelivery, got.AnalysedSubject, ids[1], "newer text")
		}
		// The same delivery analysed again (a retry) is recorded.
		if err := st.MarkAnalysed(ctx, thread, ids[1], time.Now(), "newer text, again"); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Thread(ctx, thread); got.AnalysedSubject != "newer text, again" {
			t.Errorf("after MarkAnalysed(same delivery) = %q, want it recorded", got.AnalysedSubject)
		}
	})
}
