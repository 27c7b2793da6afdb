package queue

import (
	"testing"
	"time"
)

func TestRestAfter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         int
		took, lag time.Duration
		ingesting bool
		want      time.Duration
	}{
		{"webhook idle: no rest", 100, 10 * time.Millisecond, time.Second, false, 0},
		{"webhook busy: paced to dispatchBusyRate", 100, 10 * time.Millisecond, time.Second, true, 490 * time.Millisecond},
		{"webhook busy, slow chunk: dispatchYield times the chunk", 100, time.Second, time.Second, true, 3 * time.Second},
		{"webhook busy, backlog a minute old: no rest", 100, 10 * time.Millisecond, time.Minute, true, 0},
	} {
		if got := restAfter(tc.n, tc.took, tc.lag, tc.ingesting); got != tc.want {
			t.Errorf("%s: restAfter(%d, %s, %s, %v) = %s, want %s", tc.name, tc.n, tc.took, tc.lag, tc.ingesting, got, tc.want)
		}
	}
}
