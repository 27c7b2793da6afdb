package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// batchFixture stores n deliveries, each with a ledger reservation, and
// returns their ids and the reservations' ids.
func batchFixture(t *testing.T, st *store.Store, n int) (deliveries, usage []int64) {
	t.Helper()
	ctx := context.Background()
	var ds []store.Delivery
	for i := range n {
		ds = append(ds, store.Delivery{HookID: "1", GUID: "batch-" + string(rune('a'+i)), Event: "workflow_run", Action: "completed",
			Repo: "acme/app", Payload: []byte(`{}`), ReceivedAt: time.Now()})
	}
	deliveries = insert(t, st, ds...)
	for _, id := range deliveries {
		u, err := st.Reserve(ctx, store.UsageCall{DeliveryID: id, Repo: "acme/app", Owner: "acme", Thread: "acme/app/runs/1",
			Event: "workflow_run.completed", Kind: "workflow-run-analysis", Model: "claude-sonnet-4-5", Batch: true, EstimateMicros: 5000}, nil, 25*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		usage = append(usage, u)
	}
	return deliveries, usage
}

// intend records the intent to submit items as attempt, each under a custom
// id naming the attempt and its delivery.
func intend(t *testing.T, st *store.Store, attempt string, items ...store.BatchItem) []store.BatchItem {
	t.Helper()
	for i := range items {
		items[i].CustomID = fmt.Sprintf("hw-%s-%d", attempt, items[i].DeliveryID)
	}
	got, err := st.RecordBatchIntent(context.Background(), attempt, items)
	if err != nil {
		t.Fatalf("RecordBatchIntent(%s) = %v", attempt, err)
	}
	return got
}

// submitted records submission attempt as batch batchID, and checks how
// many items it moved.
func submitted(t *testing.T, st *store.Store, attempt, batchID string, want int) {
	t.Helper()
	if n, err := st.MarkBatchSubmitted(context.Background(), attempt, batchID); err != nil || n != int64(want) {
		t.Fatalf("MarkBatchSubmitted(%s, %s) = %d, %v; want %d", attempt, batchID, n, err, want)
	}
}

func itemStates(t *testing.T, st *store.Store, ids []int64) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		it, err := st.BatchItemOf(context.Background(), id)
		if err != nil {
			t.Fatalf("BatchItemOf(%d): %v", id, err)
		}
		out = append(out, it.State+" "+it.BatchID)
	}
	return out
}

func TestBatchItemLifecycle(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ds, us := batchFixture(t, st, 3)
		if _, err := st.BatchItemOf(ctx, ds[0]); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("BatchItemOf before any item = %v, want ErrNotFound", err)
		}
		for i, id := range ds {
			added, err := st.AddBatchItem(ctx, id, us[i], `{"n":`+string(rune('0'+i))+`}`, "waiting for the batch API")
			if err != nil || !added {
				t.Fatalf("AddBatchItem(%d) = %v, %v; want added", id, added, err)
			}
			if d, _ := st.Delivery(ctx, id); d.Status != store.StatusBatched || d.Reason != "waiting for the batch API" {
				t.Errorf("delivery %d after AddBatchItem = %s (%q), want batched", id, d.Status, d.Reason)
			}
		}
		// A waiting item is kept as it is.
		if added, err := st.AddBatchItem(ctx, ds[0], 999, `{}`, "again"); err != nil || added {
			t.Errorf("AddBatchItem of a waiting delivery = %v, %v; want false", added, err)
		}
		if it, _ := st.BatchItemOf(ctx, ds[0]); it.UsageID != us[0] || it.Request != `{"n":0}` || it.DeliveryID != ds[0] {
			t.Errorf("item after a second AddBatchItem = %+v, want the first kept", it)
		}

		// Pending, oldest first, within the limits (at least one).
		for _, tt := range []struct{ limit, bytes, want int }{{10, 1 << 20, 3}, {2, 1 << 20, 2}, {10, 14, 2}, {10, 1, 1}} {
			got, err := st.PendingBatchItems(ctx, tt.limit, tt.bytes)
			if err != nil || len(got) != tt.want || got[0].DeliveryID != ds[0] {
				t.Errorf("PendingBatchItems(%d, %d) = %d items, %v; want %d from the oldest", tt.limit, tt.bytes, len(got), err, tt.want)
			}
		}
		pending, _ := st.PendingBatchItems(ctx, 10, 1<<20)
		intend(t, st, "attempt1", pending[:2]...)
		intend(t, st, "attempt2", pending[2])
		submitted(t, st, "attempt1", "msgbatch_1", 2)
		submitted(t, st, "attempt2", "msgbatch_2", 1)
		// Recording again (a repeated step) does not move a submitted item.
		submitted(t, st, "attempt1", "msgbatch_3", 0)
		if got := itemStates(t, st, ds); !slices.Equal(got, []string{"submitted msgbatch_1", "submitted msgbatch_1", "submitted msgbatch_2"}) {
			t.Errorf("states after submitting = %q", got)
		}
		if got, _ := st.PendingBatchItems(ctx, 10, 1<<20); len(got) != 0 {
			t.Errorf("PendingBatchItems after submitting = %d items, want none", len(got))
		}
		if ok, err := st.KeepBatched(ctx, ds[0], "still waiting"); err != nil || !ok {
			t.Errorf("KeepBatched(submitted) = %v, %v; want true", ok, err)
		}
		batches, err := st.SubmittedBatches(ctx)
		if err != nil || !slices.Equal(batches, []string{"msgbatch_1", "msgbatch_2"}) {
			t.Fatalf("SubmittedBatches() = %q, %v; want msgbatch_1, msgbatch_2", batches, err)
		}
		items, err := st.SubmittedItems(ctx, "msgbatch_1")
		if err != nil || len(items) != 2 || items[0].DeliveryID != ds[0] || items[1].DeliveryID != ds[1] {
			t.Fatalf("SubmittedItems(msgbatch_1) = %+v, %v", items, err)
		}

		// A success: answer stored, ledger settled, delivery queued, job
		// enqueued, all at once; a second application changes nothing.
		thens := 0
		then := func(tx *sql.Tx) error { thens++; return nil }
		answer := store.Analysis{DeliveryID: ds[0], Repo: "acme/app", Thread: 1, Kind: "workflow-run-analysis", Model: "claude-sonnet-4-5",
			Result: `{"likely_cause":"x"}`, InputTokens: 100, OutputTokens: 20, CostMicros: 300, RequestID: "msgbatch_1"}
		ok := store.BatchOutcome{Item: items[0], Analysis: &answer, Reason: "answered",
			Settlement: store.Settlement{Model: "claude-sonnet-4-5", Outcome: "ok", Input: 100, Output: 20, Micros: 300, RequestID: "msgbatch_1"}}
		for i := range 2 {
			done, err := st.FinishBatchItem(ctx, ok, then)
			if err != nil || done != (i == 0) {
				t.Fatalf("FinishBatchItem(success) #%d = %v, %v; want %v", i+1, done, err, i == 0)
			}
		}
		if thens != 1 {
			t.Errorf("then ran %d times, want 1", thens)
		}
		if a, err := st.Analysis(ctx, ds[0]); err != nil || a.Result != answer.Result || a.CostMicros != 300 {
			t.Errorf("Analysis after success = %+v, %v", a, err)
		}
		usage, err := st.UsageOf(ctx, ds[0])
		if err != nil || len(usage) != 1 || usage[0].Outcome != "ok" || usage[0].CostMicros != 300 || !usage[0].Batch || usage[0].RequestID != "msgbatch_1" {
			t.Errorf("ledger after success = %+v, %v; want one settled batch call of 300", usage, err)
		}
		if d, _ := st.Delivery(ctx, ds[0]); d.Status != store.StatusQueued || d.Reason != "answered" {
			t.Errorf("delivery after success = %s (%q), want queued", d.Status, d.Reason)
		}
		if ok, _ := st.KeepBatched(ctx, ds[0], "x"); ok {
			t.Errorf("KeepBatched(done) = true, want false")
		}

		// A failure: no answer, ledger settled with the error, queued.
		failed := store.BatchOutcome{Item: items[1], Error: "claude: overloaded_error", Reason: "to the Messages API",
			Settlement: store.Settlement{Model: "claude-sonnet-4-5", Outcome: "overloaded_error"}}
		if done, err := st.FinishBatchItem(ctx, failed, then); err != nil || !done {
			t.Fatalf("FinishBatchItem(failure) = %v, %v", done, err)
		}
		if _, err := st.Analysis(ctx, ds[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Analysis after failure = %v, want ErrNotFound", err)
		}
		if it, _ := st.BatchItemOf(ctx, ds[1]); it.State != store.BatchFailed || it.Error != "claude: overloaded_error" {
			t.Errorf("item after failure = %+v", it)
		}
		if u, _ := st.UsageOf(ctx, ds[1]); len(u) != 1 || u[0].Outcome != "overloaded_error" || u[0].CostMicros != 0 {
			t.Errorf("ledger after failure = %+v", u)
		}
		// A failed item is not batched again.
		if added, _ := st.AddBatchItem(ctx, ds[1], 999, `{}`, "again"); added {
			t.Errorf("AddBatchItem of a failed delivery = true, want false")
		}

		// An error in then undoes everything.
		rest, _ := st.SubmittedItems(ctx, "msgbatch_2")
		boom := errors.New("boom")
		o := store.BatchOutcome{Item: rest[0], Reason: "r", Settlement: store.Settlement{Outcome: "api_error"}}
		if _, err := st.FinishBatchItem(ctx, o, func(*sql.Tx) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("FinishBatchItem with a failing then = %v, want boom", err)
		}
		if got := itemStates(t, st, ds[2:]); got[0] != "submitted msgbatch_2" {
			t.Errorf("item after a failed transaction = %q, want still submitted", got)
		}
		if u, _ := st.UsageOf(ctx, ds[2]); u[0].Outcome != "reserved" {
			t.Errorf("ledger after a failed transaction = %q, want still reserved", u[0].Outcome)
		}
		if batches, _ := st.SubmittedBatches(ctx); !slices.Equal(batches, []string{"msgbatch_2"}) {
			t.Errorf("SubmittedBatches() = %q, want msgbatch_2 only", batches)
		}

		// A replay forgot the answer of a done item: it is batched afresh.
		if err := st.Tx(ctx, func(tx *sql.Tx) error { return st.ForgetAnalysisTx(ctx, tx, ds[0]) }); err != nil {
			t.Fatal(err)
		}
		if added, err := st.AddBatchItem(ctx, ds[0], 77, `{"n":"again"}`, "waiting again"); err != nil || !added {
			t.Fatalf("AddBatchItem of a done delivery = %v, %v; want added", added, err)
		}
		if it, _ := st.BatchItemOf(ctx, ds[0]); it.State != store.BatchPending || it.BatchID != "" || it.UsageID != 77 || !strings.Contains(it.Request, "again") {
			t.Errorf("item batched afresh = %+v, want pending with the new request", it)
		}
	})
}

func TestBatchSubmissionOfManyItems(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const n = 620 // more than one statement's worth
		ds := make([]store.Delivery, n)
		for i := range ds {
			ds[i] = store.Delivery{HookID: "1", GUID: "many-" + time.Duration(i).String(), Event: "issues", Payload: []byte(`{}`), ReceivedAt: time.Now()}
		}
		for _, id := range insert(t, st, ds...) {
			if _, err := st.AddBatchItem(ctx, id, id, `{}`, "r"); err != nil {
				t.Fatal(err)
			}
		}
		items, err := st.PendingBatchItems(ctx, 100_000, 1<<20)
		if err != nil || len(items) != n {
			t.Fatalf("PendingBatchItems() = %d, %v; want %d", len(items), err, n)
		}
		intend(t, st, "big", items...)
		submitted(t, st, "big", "msgbatch_big", n)
		got, err := st.SubmittedItems(ctx, "msgbatch_big")
		if err != nil || len(got) != n {
			t.Errorf("SubmittedItems() = %d, %v; want %d", len(got), err, n)
		}
	})
}

// A submission's intent is recorded before its batch is created: its items
// wait as submitting, with their custom ids and the time, until the batch's
// id is recorded or the submission is released.
func TestBatchIntents(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ds, us := batchFixture(t, st, 4)
		for i, id := range ds {
			if _, err := st.AddBatchItem(ctx, id, us[i], `{}`, "waiting"); err != nil {
				t.Fatal(err)
			}
		}
		pending, _ := st.PendingBatchItems(ctx, 10, 1<<20)
		before := time.Now().Add(-time.Second)
		a := intend(t, st, "A", pending[0], pending[1])
		if a[0].State != store.BatchSubmitting || a[0].Attempt != "A" || a[0].CustomID != fmt.Sprintf("hw-A-%d", ds[0]) || a[0].AttemptedAt.Before(before) {
			t.Errorf("RecordBatchIntent() item = %+v, want submitting in A under its custom id, now", a[0])
		}
		intend(t, st, "B", pending[2])

		// All or nothing: an item no longer pending moves none.
		if _, err := st.RecordBatchIntent(ctx, "C", []store.BatchItem{pending[3], pending[0]}); err == nil {
			t.Errorf("RecordBatchIntent() with an item already submitting = nil, want an error")
		}
		if it, _ := st.BatchItemOf(ctx, ds[3]); it.State != store.BatchPending || it.Attempt != "" {
			t.Errorf("item after a refused intent = %+v, want still pending", it)
		}

		intents, err := st.BatchIntents(ctx)
		if err != nil || len(intents) != 2 || intents[0].Attempt != "A" || len(intents[0].Items) != 2 || intents[1].Attempt != "B" {
			t.Fatalf("BatchIntents() = %+v, %v; want A with 2 items, then B", intents, err)
		}
		if got := intents[0].Items[1]; got.CustomID != fmt.Sprintf("hw-A-%d", ds[1]) || !got.AttemptedAt.Equal(intents[0].At) {
			t.Errorf("intent A's second item = %+v, want its custom id and the intent's time", got)
		}
		if got, _ := st.PendingBatchItems(ctx, 10, 1<<20); len(got) != 1 || got[0].DeliveryID != ds[3] {
			t.Errorf("PendingBatchItems() = %+v, want only the item in no intent", got)
		}
		if ok, _ := st.KeepBatched(ctx, ds[0], "still waiting"); !ok {
			t.Errorf("KeepBatched(submitting) = false, want true")
		}

		// A is recorded; B never made a batch and is released.
		submitted(t, st, "A", "msgbatch_A", 2)
		if n, err := st.ReleaseBatchIntent(ctx, "B"); err != nil || n != 1 {
			t.Fatalf("ReleaseBatchIntent(B) = %d, %v; want 1", n, err)
		}
		if n, _ := st.ReleaseBatchIntent(ctx, "A"); n != 0 {
			t.Errorf("ReleaseBatchIntent(A) after its batch was recorded = %d, want 0", n)
		}
		if it, _ := st.BatchItemOf(ctx, ds[2]); it.State != store.BatchPending || it.Attempt != "" || it.CustomID != "" || !it.AttemptedAt.IsZero() {
			t.Errorf("released item = %+v, want pending, without attempt", it)
		}
		if intents, _ := st.BatchIntents(ctx); len(intents) != 0 {
			t.Errorf("BatchIntents() after settling = %+v, want none", intents)
		}
		if it, _ := st.BatchItemOf(ctx, ds[1]); it.State != store.BatchSubmitted || it.BatchID != "msgbatch_A" || it.CustomID != fmt.Sprintf("hw-A-%d", ds[1]) {
			t.Errorf("recorded item = %+v, want submitted in msgbatch_A, its custom id kept", it)
		}

		recorded, err := st.RecordedBatches(ctx, []string{"msgbatch_A", "msgbatch_other", ""})
		if err != nil || !recorded["msgbatch_A"] || recorded["msgbatch_other"] || len(recorded) != 1 {
			t.Errorf("RecordedBatches() = %v, %v; want msgbatch_A only", recorded, err)
		}

		// An intent the API refused for good fails its items from where they are.
		c := intend(t, st, "C", pending[3])
		o := store.BatchOutcome{Item: c[0], Error: "claude: 400 invalid_request_error", Reason: "to the Messages API",
			Settlement: store.Settlement{Outcome: "invalid_request_error"}}
		if done, err := st.FinishBatchItem(ctx, o, func(*sql.Tx) error { return nil }); err != nil || !done {
			t.Fatalf("FinishBatchItem(submitting) = %v, %v; want done", done, err)
		}

		// A done item batched afresh by a replay starts without an attempt.
		items, _ := st.SubmittedItems(ctx, "msgbatch_A")
		ok := store.BatchOutcome{Item: items[0], Analysis: &store.Analysis{DeliveryID: ds[0], Result: `{}`}, Reason: "answered"}
		if _, err := st.FinishBatchItem(ctx, ok, func(*sql.Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(ctx, func(tx *sql.Tx) error { return st.ForgetAnalysisTx(ctx, tx, ds[0]) }); err != nil {
			t.Fatal(err)
		}
		if added, err := st.AddBatchItem(ctx, ds[0], 88, `{}`, "again"); err != nil || !added {
			t.Fatalf("AddBatchItem(done) = %v, %v", added, err)
		}
		if it, _ := st.BatchItemOf(ctx, ds[0]); it.State != store.BatchPending || it.Attempt != "" || it.CustomID != "" || it.BatchID != "" {
			t.Errorf("item batched afresh = %+v, want pending without attempt", it)
		}
	})
}
