package store_test

import (
	"context"
	"github.com/hookwise/hookwise/internal/pace"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookwise/hookwise/internal/store"
)

// Two instances reserving writes for one token together keep to the
// limits: no minute holds more than perMinute slots, no two are closer
// than the spacing, and every reservation gets its own slot.
func TestTakeWriteSlotSharedByInstances(t *testing.T) {
	t.Parallel()
	forEachURL(t, func(t *testing.T, engine, url string) {
		handles := []*store.Store{openURL(t, url)}
		if engine == "postgres" {
			handles = append(handles, openURL(t, url)) // a second instance
		}
		const perMinute, takes = 10, 36
		spacing := 2 * time.Second
		limits := pace.WriteLimits{PerMinute: perMinute, Spacing: spacing}
		now := time.Now()
		var mu sync.Mutex
		var got []time.Time
		var wg sync.WaitGroup
		for i := range takes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at, _, err := handles[i%len(handles)].TakeWriteSlot(context.Background(), "token", now, limits, 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, at)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(got) != takes {
			t.Fatalf("%d slots, want %d", len(got), takes)
		}
		slices.SortFunc(got, time.Time.Compare)
		for i := 1; i < len(got); i++ {
			if gap := got[i].Sub(got[i-1]); gap < spacing {
				t.Errorf("slots %d and %d are %v apart, want at least %v", i-1, i, gap, spacing)
			}
		}
		for i := perMinute; i < len(got); i++ {
			if got[i].Sub(got[i-perMinute]) <= time.Minute {
				t.Errorf("%d slots within a minute ending at slot %d", perMinute+1, i)
			}
		}
		// An idle key's first write goes at once.
		at, taken, err := handles[0].TakeWriteSlot(context.Background(), "other", now, limits, 0)
		if err != nil || !taken || !at.Equal(time.UnixMilli(now.UnixMilli())) {
			t.Errorf("first slot of a new key = %v, %v, %v; want now, reserved", at, taken, err)
		}
		// A slot further off than within is named, not reserved: asking
		// again gives the same start.
		for range 2 {
			at, taken, err = handles[0].TakeWriteSlot(context.Background(), "token", now, limits, time.Minute)
			if err != nil || taken || !at.After(now.Add(time.Minute)) {
				t.Errorf("slot after 36 reserved = %v, %v, %v; want a later start, not reserved", at, taken, err)
			}
		}
		again, _, _ := handles[0].TakeWriteSlot(context.Background(), "token", now, limits, time.Minute)
		if !again.Equal(at) {
			t.Errorf("an unreserved slot moved from %v to %v", at, again)
		}
		// Every instance sees the fleet's reservations, in order.
		slots, err := handles[len(handles)-1].WriteSlots(context.Background(), "token", now)
		if err != nil || len(slots) != takes || !slices.IsSortedFunc(slots, time.Time.Compare) || !slots[takes-1].Equal(got[takes-1]) {
			t.Errorf("WriteSlots = %d slots, %v; want the %d reserved, in order", len(slots), err, takes)
		}
	})
}
